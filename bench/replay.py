"""A replay of N events next to Dagster's own per-event write loop on the same storage.

    .venv/bin/python -m bench.replay --events 5000
    .venv/bin/python -m bench.replay --events 5000 --storage postgres
    .venv/bin/python -m bench.replay --events 100000 --storage postgres --per-event-limit 20000

Starts a broker (as the tests do), publishes N task-success events of distinct runs of 50 DAGs,
then times ``airstream replay`` into a fresh Dagster instance with definitions that map each
DAG's ``load`` task to an asset (a materialization and an ``airflow_task_succeeded`` check
evaluation per event). Into two more fresh instances of the same storage it writes the same
translated asset events twice: with Dagster's per-event loop (``report_runless_asset_event`` per
event; ``--per-event-limit`` times only the first asset events, for long runs) and with
:func:`airstream.dagster_consumer.batch_store.store_asset_events` in the replay's batches. The
storage is SQLite (Dagster's default) or, with ``--storage postgres``, a new database per
instance on a PostgreSQL server started as the tests start it (``devstack.postgres``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dagster import DagsterInstance
from kafka import KafkaProducer

from airstream.dagster_consumer.batch_store import batches_on, store_asset_events
from airstream.dagster_consumer.cli import main as airstream_main
from airstream.dagster_consumer.replay import DEFAULT_BATCH
from airstream.dagster_consumer.sensor import built_sensor_parts
from airstream.dagster_consumer.translate import translate
from airstream.schemas import EventType, TaskInstanceEvent, message_key, serialize_event
from bench.compare.machine import machine
from devstack.broker import create_topic, start_broker
from devstack.postgres import dagster_yaml_for, start_postgres


def _events(count: int) -> list[TaskInstanceEvent]:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    return [
        TaskInstanceEvent.new(
            instance="bench",
            event_type=EventType.TASK_INSTANCE_SUCCESS,
            state="success",
            dag_id=f"dag_{number % 50}",
            run_id=f"run_{number}",
            task_id="load",
            try_number=1,
            start_date=start + timedelta(seconds=number),
            end_date=start + timedelta(seconds=number + 1),
            logical_date=start + timedelta(seconds=number),
            producer="bench",
        )
        for number in range(count)
    ]


RESULTS = Path(__file__).resolve().parents[1] / "docs" / "bench"

_DEFINITIONS = """
from dagster import AssetSpec, Definitions
from airstream.dagster_consumer import (
    AirflowInstance, KafkaEventSource, assets_with_task_mappings, build_defs_from_airflow_instance,
)

defs = build_defs_from_airflow_instance(
    airflow_instance=AirflowInstance(
        name="bench", event_source=KafkaEventSource(bootstrap_servers={servers!r}, topic={topic!r})
    ),
    defs=Definitions(
        assets=[
            spec
            for number in range(50)
            for spec in assets_with_task_mappings(
                dag_id=f"dag_{{number}}", task_mappings={{"load": [AssetSpec(f"table_{{number}}")]}}
            )
        ]
    ),
)
"""


@contextlib.contextmanager
def _instance_homes(storage: str, work: Path) -> Iterator[Callable[[str], Path]]:
    """``home(name)``: a new Dagster home under ``work`` on ``storage`` (a new PostgreSQL database each)."""
    server_context = start_postgres() if storage == "postgres" else contextlib.nullcontext()
    with server_context as server:

        def home(name: str) -> Path:
            folder = work / name
            folder.mkdir()
            yaml = "telemetry:\n  enabled: false\n"
            if server is not None:
                database = f"bench_{name}_{uuid.uuid4().hex[:8]}"
                server.create_database(database)
                yaml = dagster_yaml_for(replace(server, database=database))
            (folder / "dagster.yaml").write_text(yaml)
            return folder

        yield home


def _rates(label: str, events: int, asset_events: int, seconds: float) -> str:
    per_event = f"{events / seconds:,.0f} events/s, " if events else ""
    return f"{label}: {seconds:.1f} s, {per_event}{asset_events / seconds:,.0f} asset events/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--per-event-limit", type=int, help="time Dagster's per-event loop on only this many asset events"
    )
    parser.add_argument("--out", type=Path, help="the results file (default docs/bench/replay-<storage>.json)")
    args = parser.parse_args()
    out = args.out or RESULTS / f"replay-{args.storage}.json"
    facts = machine()
    events = _events(args.events)
    with (
        tempfile.TemporaryDirectory() as folder,
        start_broker(Path(folder) / "broker") as broker,
        _instance_homes(args.storage, Path(folder)) as new_home,
    ):
        work = Path(folder)
        topic = f"bench-replay-{uuid.uuid4().hex[:8]}"
        create_topic(broker.bootstrap_servers, topic, partitions=3)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=20)
        began = time.monotonic()
        for event in events:
            producer.send(topic, key=message_key(event.instance, event.dag_id), value=serialize_event(event))
        producer.flush(timeout=120)
        producer.close()
        print(f"published {len(events):,} events in {time.monotonic() - began:.1f} s; storage: {args.storage}")

        definitions = work / "bench_replay_definitions.py"
        definitions.write_text(_DEFINITIONS.format(servers=broker.bootstrap_servers, topic=topic))
        os.environ["DAGSTER_HOME"] = str(new_home("replay_home"))
        output = io.StringIO()
        began = time.monotonic()
        with contextlib.redirect_stdout(output):
            status = airstream_main(["replay", "--instance", "bench", "-f", str(definitions)])
        replay_seconds = time.monotonic() - began
        print(output.getvalue().strip().splitlines()[-1])
        assert status == 0, output.getvalue()

        parts = built_sensor_parts("bench")
        assert parts is not None
        recorder = parts[0]
        asset_events = [asset_event for event in events for asset_event in translate(event, mappings=recorder.mappings)]
        print(_rates(f"replay of {len(events):,} events", len(events), len(asset_events), replay_seconds))

        per_event = asset_events[: args.per_event_limit] if args.per_event_limit else asset_events
        with DagsterInstance.from_config(str(new_home("per_event_home"))) as instance:
            began = time.monotonic()
            for asset_event in per_event:
                instance.report_runless_asset_event(asset_event)
            per_event_seconds = time.monotonic() - began
        print(_rates(f"{len(per_event):,} report_runless_asset_event writes", 0, len(per_event), per_event_seconds))

        with DagsterInstance.from_config(str(new_home("batch_home"))) as instance:
            assert batches_on(instance), "store_asset_events falls back to per-event writes here"
            began = time.monotonic()
            for start in range(0, len(asset_events), 2 * DEFAULT_BATCH):
                store_asset_events(instance, asset_events[start : start + 2 * DEFAULT_BATCH])
            batch_seconds = time.monotonic() - began
        print(
            _rates(f"{len(asset_events):,} asset events with store_asset_events", 0, len(asset_events), batch_seconds)
        )

        loop_rate = len(per_event) / per_event_seconds
        replay_ratio = len(asset_events) / replay_seconds / loop_rate
        batch_ratio = len(asset_events) / batch_seconds / loop_rate
        print(
            f"asset events/s over Dagster's per-event loop: replay {replay_ratio:.2f}x, "
            f"store_asset_events alone {batch_ratio:.2f}x"
        )
        results = {
            "events": len(events),
            "asset_events": len(asset_events),
            "storage": args.storage,
            "replay_seconds": round(replay_seconds, 1),
            "asset_events_per_second": {
                "replay": round(len(asset_events) / replay_seconds, 1),
                "dagster_loop": round(loop_rate, 1),
                "store_asset_events": round(len(asset_events) / batch_seconds, 1),
            },
            "dagster_loop_asset_events": len(per_event),
            "replay_vs_loop": round(replay_ratio, 2),
            "store_asset_events_vs_loop": round(batch_ratio, 2),
            "machine": {**facts, "load_average_at_end": os.getloadavg()},
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"results: {out}")


if __name__ == "__main__":
    main()
