"""``airstream replay`` against a real broker and a real Dagster instance in a temporary DAGSTER_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from airstream.dagster_consumer.cli import load_user_definitions, main
from airstream.dagster_consumer.replay import ReplayError, ReplayState, parse_time
from airstream.dagster_consumer.translate import EVENT_ID_METADATA_KEY
from airstream.schemas import DagRunEvent, Event, EventType, TaskInstanceEvent, message_key
from devstack.broker import Broker, publish
from devstack.dagster import tick_and_store
from devstack.processes import free_port

INSTANCE = "prod"
WAREHOUSE = AssetKey("warehouse_table")
DEFINITIONS = """
from dagster import AssetSpec, Definitions
from airstream.dagster_consumer import (
    AirflowInstance, KafkaEventSource, assets_with_task_mappings, build_defs_from_airflow_instance,
)

defs = build_defs_from_airflow_instance(
    airflow_instance=AirflowInstance(
        name="prod",
        event_source=KafkaEventSource(bootstrap_servers={servers!r}, topic={topic!r}),
        webserver_url="http://airflow.example:8080",
    ),
    defs=Definitions(
        assets=assets_with_task_mappings(dag_id="etl", task_mappings={{"load": [AssetSpec("warehouse_table")]}})
    ),
)
"""


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def definitions(tmp_path: Path, broker: Broker, topic: str) -> Path:
    path = tmp_path / f"replay_defs_{topic.replace('-', '_')}.py"
    path.write_text(DEFINITIONS.format(servers=broker.bootstrap_servers, topic=topic))
    return path


def _publish(broker: Broker, topic: str, events: Sequence[Event | bytes | None]) -> None:
    publish(broker.bootstrap_servers, topic, events, raw_key=message_key(INSTANCE, "etl"))


def _run(number: int, dag_id: str = "etl", instance: str = INSTANCE) -> list[Event]:
    """A run of one task on day ``number`` of November 2026: running, success, DAG run success."""
    start = datetime(2026, 11, number, 12, 0, tzinfo=timezone.utc)
    end = start + timedelta(seconds=3)
    run = f"run_{number}"
    task = {
        "instance": instance,
        "dag_id": dag_id,
        "run_id": run,
        "task_id": "load",
        "try_number": 1,
        "start_date": start,
        "logical_date": start,
        "producer": "test",
    }
    return [
        TaskInstanceEvent.new(event_type=EventType.TASK_INSTANCE_RUNNING, state="running", **task),
        TaskInstanceEvent.new(event_type=EventType.TASK_INSTANCE_SUCCESS, state="success", end_date=end, **task),
        DagRunEvent.new(
            instance=instance,
            event_type=EventType.DAG_RUN_SUCCESS,
            state="success",
            dag_id=dag_id,
            run_id=run,
            start_date=start,
            end_date=end,
            logical_date=start,
            producer="test",
        ),
    ]


def _run_outcomes(events: Sequence[Event]) -> list[str]:
    """The ids of the DAG-run outcomes among ``events``: what the DAG assets' history ("runs",
    the default) records, one record each."""
    return sorted(e.event_id for e in events if isinstance(e, DagRunEvent) and e.end_date is not None)


def _recorded_ids(home: Path, dag_ids: Sequence[str] = ("etl",)) -> list[str]:
    """The event ids recorded on the DAG assets (one record per finished DAG run), repeats included."""
    ids: list[str] = []
    with DagsterInstance.from_config(str(home)) as instance:
        for dag_id in dag_ids:
            key = AssetKey([INSTANCE, "dag", dag_id])
            for result in (
                instance.fetch_materializations(key, limit=10_000),
                instance.fetch_observations(key, limit=10_000),
            ):
                for record in result.records:
                    event = record.asset_materialization or record.asset_observation  # type: ignore[attr-defined]
                    ids.append(str(event.metadata[EVENT_ID_METADATA_KEY].value))
    return ids


def _warehouse_runs(home: Path) -> list[str]:
    with DagsterInstance.from_config(str(home)) as instance:
        records = instance.fetch_materializations(WAREHOUSE, limit=10_000).records
        return sorted(str(r.asset_materialization.metadata["airflow/run_id"].value) for r in records)  # type: ignore[union-attr]


def _replay(*options: str) -> int:
    return main(["replay", "--instance", INSTANCE, *options])


@pytest.fixture
def history(broker: Broker, topic: str) -> list[Event]:
    """10 runs of ``etl`` (30 events), a run of another instance, and a poison message."""
    events = [event for number in range(1, 11) for event in _run(number)]
    _publish(broker, topic, [*events[:10], *_run(1, instance="staging"), b"not json", *events[10:]])
    return events


@pytest.mark.integration
def test_a_replay_records_every_event_once_and_a_second_replay_nothing(
    dagster_home: Path, definitions: Path, history: list[Event], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _replay("-f", str(definitions)) == 0
    out = capsys.readouterr().out
    assert "34 read, 30 recorded" in out and "0 duplicates, 3 skipped, 1 poison" in out, out
    assert "airstream replay: 34/34 read (100%)" in out  # not a terminal: plain progress lines
    ids = _recorded_ids(dagster_home)
    assert sorted(ids) == _run_outcomes(history), "10 runs, each recorded once"
    assert _warehouse_runs(dagster_home) == sorted(f"run_{n}" for n in range(1, 11))  # the definitions' mapping

    assert _replay("-f", str(definitions)) == 0  # finished: nothing to read, nothing recorded
    assert "0 recorded" in capsys.readouterr().out
    assert _replay("-f", str(definitions), "--restart", "--state-file", str(dagster_home / "other.json")) == 0
    out = capsys.readouterr().out
    assert "34 read, 10 recorded (0 asset events), 20 duplicates" in out, out  # the 10 are running: no record
    # a whole second replay (its own state) leaves Dagster exactly as one replay did
    assert sorted(_recorded_ids(dagster_home)) == sorted(ids)
    assert _warehouse_runs(dagster_home) == sorted(f"run_{n}" for n in range(1, 11))

    state = ReplayState.load(dagster_home / "airstream-replay" / f"{INSTANCE}-{definitions_topic(definitions)}.json")
    assert state is not None and state.finished and len(state.seen) == 30


def definitions_topic(definitions: Path) -> str:
    text = definitions.read_text()
    return text.split("topic=")[1].split("'")[1]


@pytest.mark.integration
def test_a_replay_of_the_same_state_after_new_events_records_only_the_new(
    broker: Broker, topic: str, dagster_home: Path, history: list[Event], capsys: pytest.CaptureFixture[str]
) -> None:
    options = ("--bootstrap-servers", broker.bootstrap_servers, "--topic", topic)
    assert _replay(*options) == 0
    _publish(broker, topic, [*_run(11), *history[:6]])  # new events and redelivered ones
    assert _replay(*options) == 0
    assert "9 read, 3 recorded (2 asset events), 6 duplicates" in capsys.readouterr().out
    ids = _recorded_ids(dagster_home)
    assert len(ids) == len(set(ids)) == 11


@pytest.mark.integration
def test_an_interrupted_replay_resumes_and_totals_one_full_replay(
    broker: Broker,
    topic: str,
    dagster_home: Path,
    definitions: Path,
    history: list[Event],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _replay("-f", str(definitions), "--max-events", "7", "--batch-size", "3") == 0
    out = capsys.readouterr().out
    assert "7 read" in out and "run the same command again to continue" in out, out
    partial = _recorded_ids(dagster_home)
    assert 0 < len(partial) < 10
    assert _replay("-f", str(definitions), "--max-events", "11") == 0
    assert _replay("-f", str(definitions)) == 0
    ids = _recorded_ids(dagster_home)
    assert sorted(ids) == _run_outcomes(history), f"10 runs, recorded {len(ids)}, distinct {len(set(ids))}"
    assert _warehouse_runs(dagster_home) == sorted(f"run_{n}" for n in range(1, 11))


@pytest.mark.integration
def test_dag_and_time_window_select(
    broker: Broker, topic: str, dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    etl = [event for number in range(1, 11) for event in _run(number)]
    other = [event for number in range(1, 11) for event in _run(number, dag_id="other")]
    _publish(broker, topic, [*etl, *other])
    options = ("--bootstrap-servers", broker.bootstrap_servers, "--topic", topic)

    assert _replay(*options, "--dag", "other", "--since", "2026-11-03", "--until", "2026-11-05T23:59:59Z") == 0
    ids = _recorded_ids(dagster_home, ["etl", "other"])
    # days 3, 4 and 5: the success events by their end date; the running events by when they were emitted (now)
    expected = {e.event_id for e in other if e.end_date and 3 <= e.end_date.day <= 5}
    assert sorted(ids) == _run_outcomes([e for e in other if e.event_id in expected])

    # a different selection with the same state file is refused, not mixed
    assert _replay(*options, "--dag", "etl") == 2
    assert "--restart" in capsys.readouterr().err
    assert _replay(*options, "--dag", "etl", "--dag", "other", "--restart", "--until", "2026-11-02T00:00:00+00:00") == 0
    assert len(_recorded_ids(dagster_home, ["etl", "other"])) == 3 + 2  # and the runs of day 1 of both DAGs


@pytest.mark.integration
def test_since_uses_offsets_for_times_and_skips_older_records(
    broker: Broker, topic: str, dagster_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _publish(broker, topic, _run(1))
    # records written now: a --since an hour from now finds no offset, so nothing is read at all
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert _replay("--bootstrap-servers", broker.bootstrap_servers, "--topic", topic, "--since", later) == 0
    assert "0 read" in capsys.readouterr().out
    assert _recorded_ids(dagster_home) == []


@pytest.mark.integration
def test_the_command_runs_as_a_subprocess(broker: Broker, topic: str, dagster_home: Path, history: list[Event]) -> None:
    airstream = Path(sys.executable).parent / "airstream"
    command = [str(airstream)] if airstream.exists() else [sys.executable, "-m", "airstream.dagster_consumer.cli"]
    env = {**os.environ, "DAGSTER_HOME": "", "PYTHONUNBUFFERED": "1"}
    options = ["--instance", INSTANCE, "--bootstrap-servers", broker.bootstrap_servers, "--topic", topic]
    result = subprocess.run(
        [*command, "replay", *options, "--dagster-home", str(dagster_home)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "34 read, 30 recorded" in result.stdout
    assert "airstream replay: 34/34 read (100%)" in result.stdout
    assert len(_recorded_ids(dagster_home)) == 10


@pytest.mark.integration
def test_an_unknown_broker_is_named(dagster_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    servers = f"127.0.0.1:{free_port()}"
    status = _replay("--bootstrap-servers", servers, "--topic", "t", "--connect-timeout", "1")
    assert status == 1
    assert servers in capsys.readouterr().err


def test_bad_options_say_what_to_fix(
    dagster_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    servers = ("--bootstrap-servers", "127.0.0.1:1", "--topic", "t")
    assert _replay(*servers, "--since", "yesterday") == 2
    assert "--since 'yesterday' is not an ISO 8601 time" in capsys.readouterr().err
    assert _replay(*servers, "--since", "2026-11-02", "--until", "2026-11-01") == 2
    assert "is after --until" in capsys.readouterr().err
    assert _replay("--topic", "t") == 2
    assert "--bootstrap-servers is required" in capsys.readouterr().err
    monkeypatch.delenv("DAGSTER_HOME")
    assert _replay(*servers) == 2
    assert "DAGSTER_HOME" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["replay", *servers])  # --instance is required
    assert "--instance" in capsys.readouterr().err


def test_times_and_the_state_file() -> None:
    assert parse_time("2026-11-01", "--since") == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert parse_time("2026-11-01T12:00:00+02:00", "--since").utcoffset() == timedelta(hours=2)
    with pytest.raises(ReplayError):
        parse_time("1 Nov", "--until")


def test_the_state_keeps_100k_ids_compactly(tmp_path: Path) -> None:
    state = ReplayState(instance=INSTANCE, topic="t", selection={}, position={"0": 5})
    for number in range(100_000):
        state.seen.add(f"event-{number}")
    path = tmp_path / "state.json"
    state.save(path)
    assert path.stat().st_size < 1_200_000
    loaded = ReplayState.load(path)
    assert loaded is not None and len(loaded.seen) == 100_000 and "event-99999" in loaded.seen
    assert not loaded.seen.add("event-0")
    path.write_text("{not json")
    with pytest.raises(ReplayError, match="--restart"):
        ReplayState.load(path)
    assert json.loads(json.dumps(loaded.selection)) == {}


def test_a_terminal_gets_a_bar_redrawn_in_place() -> None:
    import io

    from airstream.dagster_consumer.replay import _Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    progress = _Progress(10, out)
    progress.update(5, 4)
    progress.update(5, 9)
    progress.close()
    assert out.getvalue().startswith("\r[" + "#" * 15 + "-" * 15 + "]  50% 5/10 read, 4 recorded")
    assert "\r[" + "#" * 30 + "] 100% 10/10 read, 9 recorded" in out.getvalue()
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 1


@pytest.mark.integration
def test_the_sensor_after_a_replay_and_a_replay_after_the_sensor_record_nothing_twice(
    dagster_home: Path, definitions: Path, history: list[Event], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _replay("-f", str(definitions)) == 0
    recorded = sorted(_recorded_ids(dagster_home))
    sensor = load_user_definitions(None, str(definitions)).defs.resolve_sensor_def("prod__airflow_event_sensor")
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        cursor, _ = tick_and_store(sensor, instance, None)  # the sensor reads the whole topic the replay read
        cursor, _ = tick_and_store(sensor, instance, cursor)
    assert sorted(_recorded_ids(dagster_home)) == recorded, "the sensor took the replay's ids"
    assert _warehouse_runs(dagster_home) == sorted(f"run_{n}" for n in range(1, 11))

    assert _replay("-f", str(definitions), "--restart") == 0  # and a replay over what both recorded
    assert "0 asset events" in capsys.readouterr().out
    assert sorted(_recorded_ids(dagster_home)) == recorded
    assert _warehouse_runs(dagster_home) == sorted(f"run_{n}" for n in range(1, 11))
