"""What the sensor makes Dagster store per tick: the cursor (kept by Dagster with every tick, in
the tick's row and in the sensor's state) and what goes to the key-value store, idle and busy.

    .venv/bin/python -m bench.cursor_size --events 20000 --per-tick 500

Runs the airstream sensor against a fresh SQLite Dagster instance, fed by an in-memory source of
N task-success events of distinct runs of 50 DAGs, each task mapped to an asset (``--per-tick``
events per tick), storing each tick's asset events as the daemon does, then ``--idle`` idle
ticks. Prints, for the earlier form (a cursor carrying a window of the last 10,000 event ids) and
for this one: cursor bytes per idle and busy tick, and the bytes written to the key-value store
per tick.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from dagster import AssetKey, DagsterInstance

from airstream.dagster_consumer import (
    AirflowInstance,
    AssetMappings,
    build_airflow_event_sensor,
    recorded_ids,
    replayed_ids,
)
from airstream.dagster_consumer import sensor as sensor_module
from airstream.dagster_consumer.cursor import DEFAULT_DEDUPLICATION_WINDOW, SeenEvents
from airstream.dagster_consumer.sources.base import EventBatch, EventSource, Position
from airstream.schemas import Event, EventType, TaskInstanceEvent
from devstack.dagster import tick_and_store


class _ListSource(EventSource):
    def __init__(self, events: list[Event], per_read: int) -> None:
        self.events, self.per_read = events, per_read

    def read(self, position: Position | None) -> EventBatch:
        start = (position or {}).get("0", 0)
        end = min(len(self.events), start + self.per_read)
        return EventBatch(events=self.events[start:end], position={"0": end}, ends={"0": len(self.events)})

    def describe(self) -> str:
        return "memory://bench"


def _events(count: int, now: datetime) -> list[Event]:
    return [
        TaskInstanceEvent.new(
            instance="bench",
            event_type=EventType.TASK_INSTANCE_SUCCESS,
            state="success",
            dag_id=f"dag_{number % 50}",
            run_id=f"run_{number}",
            task_id="load",
            try_number=1,
            start_date=now - timedelta(seconds=count - number + 5),
            end_date=now - timedelta(seconds=count - number),
            producer="bench",
        )
        for number in range(count)
    ]


def earlier_cursor_bytes() -> int:
    """The cursor of the window-based sensor once its window is full (3 partitions)."""
    seen = SeenEvents()
    for _ in range(DEFAULT_DEDUPLICATION_WINDOW):
        seen.add(str(uuid.uuid4()))
    document = {"position": {"0": 123456, "1": 123456, "2": 123456}, "seen": seen.encode()}
    return len(json.dumps(document, sort_keys=True, separators=(",", ":")).encode())


def stored_per_tick(cursor: str) -> tuple[int, int] | None:
    """The bytes of the tick row and of the sensor's state Dagster writes for a tick with ``cursor``,
    serialized as its daemon does (with Dagster's own serializer: private, for this measurement only)."""
    try:
        from dagster._core.scheduler.instigation import (
            InstigatorType,
            SensorInstigatorData,
            TickData,
            TickStatus,
        )
        from dagster._serdes import serialize_value
    except ImportError:
        return None
    now = time.time()
    name = "bench__airflow_event_sensor"
    tick = TickData(
        instigator_origin_id="0" * 40,
        instigator_name=name,
        instigator_type=InstigatorType.SENSOR,
        status=TickStatus.SUCCESS,
        timestamp=now,
        run_ids=[],
        cursor=cursor,
        selector_id="0" * 40,
        log_key=[name, "0" * 8, "0" * 8],
        end_timestamp=now,
    )
    state = SensorInstigatorData(last_tick_timestamp=now, min_interval=1, cursor=cursor, last_tick_start_timestamp=now)
    return len(serialize_value(tick)), len(serialize_value(state))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--per-tick", type=int, default=500)
    parser.add_argument("--idle", type=int, default=20)
    args = parser.parse_args()

    written: list[int] = []

    def counting(original: Any) -> Any:
        def write(instance: Any, pairs: dict[str, str]) -> None:
            written.append(sum(len(key) + len(value) for key, value in pairs.items()))
            original(instance, pairs)

        return write

    recorded_ids.write_values = counting(recorded_ids.write_values)
    replayed_ids.write_values = counting(replayed_ids.write_values)
    now = datetime.now(timezone.utc)
    clock = [now.timestamp()]
    sensor_module._now = lambda: clock[0]

    with tempfile.TemporaryDirectory() as work:
        home = Path(work)
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        source = _ListSource(_events(args.events, now), args.per_tick)
        sensor = build_airflow_event_sensor(
            airflow_instance=AirflowInstance(name="bench", event_source=source),
            mappings=AssetMappings(by_task={(f"dag_{n}", "load"): [AssetKey(f"table_{n}")] for n in range(50)}),
        )
        busy: list[tuple[int, int, float]] = []
        idle: list[tuple[int, int, float]] = []
        cursor: str | None = None
        with DagsterInstance.from_config(str(home)) as instance:
            for phase, ticks in (("busy", -(-args.events // args.per_tick)), ("idle", args.idle)):
                for _ in range(ticks):
                    clock[0] += 5
                    written.clear()
                    began = time.monotonic()
                    cursor, _ = tick_and_store(sensor, instance, cursor)
                    sample = (len((cursor or "").encode()), sum(written), time.monotonic() - began)
                    (busy if phase == "busy" else idle).append(sample)
        kvs = sqlite3.connect(home / "history" / "runs.db")
        rows, total = kvs.execute(
            "select count(*), coalesce(sum(length(value)), 0) from kvs where key like 'airstream/%'"
        ).fetchone()
        kvs.close()

    segments = len(json.loads(cursor or "{}").get("ids", {}).get("segs", []))
    before = earlier_cursor_bytes()
    print(f"earlier form: cursor with a full 10,000-id window: {before:,} bytes on every tick, idle or busy")
    print(
        f"this form, {args.events:,} events in {len(busy)} busy ticks of {args.per_tick}, then {len(idle)} idle ticks:"
    )
    print(
        f"  busy ticks: cursor {min(s[0] for s in busy):,}-{max(s[0] for s in busy):,} bytes; "
        f"key-value store written per tick median {statistics.median(s[1] for s in busy):,.0f} bytes, "
        f"max {max(s[1] for s in busy):,} (merges); tick time median {statistics.median(s[2] for s in busy):.2f} s"
    )
    print(
        f"  idle ticks: cursor {max(s[0] for s in idle):,} bytes; key-value store written per tick "
        f"{max(s[1] for s in idle):,} bytes"
    )
    print(f"  at the end: {segments} live segment(s); {rows} airstream rows, {total:,} bytes in the key-value store")
    print(
        "  the cursor is what Dagster stores with every tick (in the tick's row and the sensor's state): "
        f"{before:,} -> {max(s[0] for s in idle):,} bytes idle, {max(s[0] for s in busy):,} busy"
    )
    old_row = stored_per_tick("x" * before)
    new_row = stored_per_tick(cursor or "")
    if old_row and new_row:
        print(
            f"  a tick's row plus the sensor's state as Dagster serializes them: earlier {sum(old_row):,} bytes "
            f"({old_row[0]:,} + {old_row[1]:,}), now {sum(new_row):,} bytes ({new_row[0]:,} + {new_row[1]:,}) "
            "per idle tick"
        )


if __name__ == "__main__":
    main()
