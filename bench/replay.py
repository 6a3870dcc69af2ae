"""A replay of N events next to N bare ``report_runless_asset_event`` writes on the same storage.

    .venv/bin/python -m bench.replay --events 100000

Starts a broker (as the tests do), publishes N task-success events of distinct runs of 50 DAGs,
then times ``airstream replay`` into a fresh SQLite Dagster instance with definitions that map
each DAG's ``load`` task to an asset (a materialization and an ``airflow_task_succeeded`` check
evaluation per event), and, into another fresh SQLite instance, bare ``report_runless_asset_event``
writes of the same translated asset events. The gap between the two is what the replay adds to
Dagster's storage (reading the topic, translating, looking ids up in the event log, its state).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dagster import DagsterInstance
from kafka import KafkaProducer

from airstream.dagster_consumer.cli import main as airstream_main
from airstream.dagster_consumer.sensor import built_sensor_parts
from airstream.dagster_consumer.translate import translate
from airstream.schemas import EventType, TaskInstanceEvent, message_key, serialize_event
from devstack.broker import create_topic, start_broker


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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    events = _events(args.events)
    with tempfile.TemporaryDirectory() as work, start_broker(Path(work) / "broker") as broker:
        topic = f"bench-replay-{uuid.uuid4().hex[:8]}"
        create_topic(broker.bootstrap_servers, topic, partitions=3)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=20)
        began = time.monotonic()
        for event in events:
            producer.send(topic, key=message_key(event.instance, event.dag_id), value=serialize_event(event))
        producer.flush(timeout=120)
        producer.close()
        print(f"published {len(events):,} events in {time.monotonic() - began:.1f} s")

        definitions = Path(work) / "bench_replay_definitions.py"
        definitions.write_text(_DEFINITIONS.format(servers=broker.bootstrap_servers, topic=topic))
        replay_home = Path(work) / "replay_home"
        replay_home.mkdir()
        (replay_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        os.environ["DAGSTER_HOME"] = str(replay_home)
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
        bare_home = Path(work) / "bare_home"
        bare_home.mkdir()
        (bare_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with DagsterInstance.from_config(str(bare_home)) as instance:
            began = time.monotonic()
            for asset_event in asset_events:
                instance.report_runless_asset_event(asset_event)
            bare_seconds = time.monotonic() - began
        print(
            f"replay of {len(events):,} events: {replay_seconds:.1f} s ({len(events) / replay_seconds:,.0f} events/s); "
            f"{len(asset_events):,} bare report_runless_asset_event writes: {bare_seconds:.1f} s "
            f"({len(asset_events) / bare_seconds:,.0f}/s); the replay takes {replay_seconds / bare_seconds:.2f}x"
        )


if __name__ == "__main__":
    main()
