"""Sustained load: task events published at a steady rate while a consumer records them, the lag sampled.

    .venv/bin/python -m bench.sustained --rate 100 --minutes 10 --storage sqlite --consumer sensor
    .venv/bin/python -m bench.sustained --rate 20 --minutes 1          # a smoke run

Starts the embedded broker and a fresh Dagster instance (SQLite in a temporary ``DAGSTER_HOME``,
or a new database on a PostgreSQL server it starts), writes definitions that map the ``load``
task of 50 DAGs (``dag_0`` .. ``dag_49``) to an asset each (``table_0`` ..), and starts the
consumer in its own process, as Dagster runs it:

* ``sensor``: airstream's sensor evaluated tick after tick, each tick's asset events stored and
  its cursor kept (:func:`devstack.dagster.tick_and_store`, as the daemon does), a tick starting
  at most every ``max(minimum_interval_seconds, 5)`` seconds: the daemon's cadence;
* ``stream``: ``airstream stream --instance bench -f DEFINITIONS --dagster-home HOME``.

A paced producer then publishes ``RATE`` task-success events a second (distinct runs, round robin
over the 50 DAGs, end date = the moment of publishing) for ``MINUTES``. Every ``--sample-seconds``
the harness reads the materializations stored since its last look (per asset, after the last
storage id it saw) and prints: events published, events recorded (distinct ``airstream/event_id``),
the lag in events and the lag in seconds (the age of the oldest published event not recorded yet).
After the last event it keeps sampling until everything is recorded or ``--drain-seconds`` pass.

The JSON (``--out``, default ``docs/bench/sustained.json``) holds the options, the machine, every
sample, p50/p95/max of the sampled lag in seconds, the largest lag in events, each event's time
from publishing to its record (p50/p95/max), the producer's pacing, the totals, and an
exactly-once check (distinct ids recorded against those published, duplicates, missing).
The target it is judged against (:mod:`bench.compare.targets`, which judges every
``docs/bench/sustained*.json``: keep one file per consumer and storage): 100 events/s for 10
minutes with the lag under 10 s throughout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from bench.compare.dagster_dev import fresh_storage, prepare_home
from bench.compare.machine import machine
from devstack import REPO_ROOT
from devstack.broker import create_topic, start_broker
from devstack.postgres import PostgresServer, start_postgres
from devstack.processes import ManagedProcess, StackError

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "bench" / "sustained.json"
INSTANCE = "bench"
DAGS = 50
DAEMON_FLOOR_SECONDS = 5.0  # Dagster's sensor daemon starts a sensor's tick at most this often
EVENT_ID_KEY = "airstream/event_id"

_DEFINITIONS = """\"\"\"bench.sustained's definitions: the load task of {dags} DAGs mapped to an asset each.\"\"\"
from dagster import AssetSpec, Definitions
from airstream.dagster_consumer import (
    AirflowInstance, KafkaEventSource, assets_with_task_mappings, build_defs_from_airflow_instance,
)

defs = build_defs_from_airflow_instance(
    airflow_instance=AirflowInstance(
        name={instance!r}, event_source=KafkaEventSource(bootstrap_servers={servers!r}, topic={topic!r})
    ),
    defs=Definitions(
        assets=[
            spec
            for number in range({dags})
            for spec in assets_with_task_mappings(
                dag_id=f"dag_{{number}}", task_mappings={{"load": [AssetSpec(f"table_{{number}}")]}}
            )
        ]
    ),
)
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.sustained", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rate", type=float, default=100, help="task events published per second (default 100)")
    parser.add_argument("--minutes", type=float, default=10, help="how long to publish (default 10)")
    parser.add_argument("--storage", choices=("sqlite", "postgres"), default="sqlite", help="Dagster's storage")
    parser.add_argument("--consumer", choices=("sensor", "stream"), default="sensor", help="what records the events")
    parser.add_argument("--sample-seconds", type=float, default=5, help="seconds between lag samples (default 5)")
    parser.add_argument(
        "--drain-seconds", type=float, default=180, help="how long to wait for the rest after publishing (default 180)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"the JSON results ({RESULTS})")
    # Internal: the sensor consumer's own process (see _sensor_loop).
    parser.add_argument("--sensor-loop", nargs=2, metavar=("DAGSTER_HOME", "DEFINITIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.minutes <= 0 or args.sample_seconds <= 0:
        parser.error("--rate, --minutes and --sample-seconds must be positive")
    return args


# --- the producer -------------------------------------------------------------------------------


@dataclass
class Published:
    """What the producer sent so far: event ids and the wall time each was handed to the client."""

    ids: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished_at: float | None = None
    most_behind_seconds: float = 0.0  # how far the producer fell behind its schedule at worst
    error: BaseException | None = None

    def snapshot(self) -> tuple[int, list[str], list[float]]:
        with self.lock:
            return len(self.ids), self.ids, self.times


def task_event(number: int, now: datetime) -> Any:
    """The ``number``-th event: ``load`` of ``dag_<number % 50>`` succeeded in run ``run_<number>`` just now."""
    from airstream.schemas import EventType, TaskInstanceEvent

    return TaskInstanceEvent.new(
        instance=INSTANCE,
        event_type=EventType.TASK_INSTANCE_SUCCESS,
        state="success",
        dag_id=f"dag_{number % DAGS}",
        run_id=f"run_{number}",
        task_id="load",
        try_number=1,
        start_date=now - timedelta(seconds=1),
        end_date=now,
        logical_date=now - timedelta(seconds=1),
        producer="bench.sustained",
    )


def publish_paced(bootstrap_servers: str, topic: str, rate: float, seconds: float, published: Published) -> None:
    """Publish ``rate`` events a second for ``seconds``, on a fixed schedule (event n at start + n / rate)."""
    from kafka import KafkaProducer

    from airstream.schemas import message_key, serialize_event

    total = round(rate * seconds)
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5)
    try:
        began = time.monotonic()
        for number in range(total):
            due = began + number / rate
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            else:
                published.most_behind_seconds = max(published.most_behind_seconds, -wait)
            event = task_event(number, datetime.now(timezone.utc))
            producer.send(topic, key=message_key(event.instance, event.dag_id), value=serialize_event(event))
            with published.lock:
                published.ids.append(event.event_id)
                published.times.append(time.time())
        producer.flush(timeout=60)
    except BaseException as error:  # reported by the sampling loop, which stops the run
        published.error = error
    finally:
        producer.close()
        published.finished_at = time.time()


# --- what Dagster holds ----------------------------------------------------------------------------


class RecordedIds:
    """The event ids of the materializations stored on the bench assets, read incrementally."""

    def __init__(self, instance: Any) -> None:
        from dagster import AssetKey

        self.instance = instance
        self.keys = [AssetKey(f"table_{number}") for number in range(DAGS)]
        self.after = dict.fromkeys(self.keys, 0)
        self.first_stored: dict[str, float] = {}  # event id -> Dagster's timestamp of its first record
        self.materializations = 0

    def poll(self) -> None:
        """Read what was stored since the last poll (one query per asset, more when over 1,000)."""
        from dagster import AssetRecordsFilter

        for key in self.keys:
            while True:
                records_filter = AssetRecordsFilter(asset_key=key, after_storage_id=self.after[key])
                result = self.instance.fetch_materializations(records_filter, limit=1000, ascending=True)
                for record in result.records:
                    self.after[key] = max(self.after[key], record.storage_id)
                    self.materializations += 1
                    entry = record.event_log_entry
                    metadata = entry.asset_materialization.metadata if entry.asset_materialization else {}
                    value = metadata.get(EVENT_ID_KEY)
                    event_id = str(getattr(value, "value", value))
                    self.first_stored.setdefault(event_id, entry.timestamp)
                if not result.has_more:
                    break

    @property
    def duplicates(self) -> int:
        return self.materializations - len(self.first_stored)


# --- the consumers ---------------------------------------------------------------------------------


def _sensor_loop(home: str, definitions_file: str) -> int:
    """The sensor consumer's process: tick, store, keep the cursor, at the daemon's cadence, until killed."""
    from dagster import DagsterInstance

    from airstream.dagster_consumer.cli import load_user_definitions
    from devstack.dagster import tick_and_store

    defs = load_user_definitions(None, definitions_file).defs
    sensor = defs.resolve_sensor_def(f"{INSTANCE}__airflow_event_sensor")
    every = max(float(sensor.minimum_interval_seconds or 0), DAEMON_FLOOR_SECONDS)
    cursor: str | None = None
    with DagsterInstance.from_config(home) as instance:
        while True:
            began = time.monotonic()
            cursor, stored = tick_and_store(sensor, instance, cursor, definitions=defs)
            took = time.monotonic() - began
            print(f"{time.time():.1f} tick: {stored} asset events stored in {took:.2f} s", flush=True)
            time.sleep(max(0.0, every - took))


def _airstream_executable() -> str:
    return str(Path(sys.executable).with_name("airstream"))


def stream_available() -> str | None:
    """``None`` when ``airstream stream`` exists; otherwise why not, as an error message."""
    found = subprocess.run(
        [_airstream_executable(), "stream", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    if found.returncode == 0:
        return None
    return (
        "--consumer stream needs the `airstream stream` command, which this checkout does not have "
        f"(`{_airstream_executable()} stream --help` exited {found.returncode}: "
        f"{(found.stderr or found.stdout).strip().splitlines()[-1:] or ['no output']}); "
        "use --consumer sensor, or a checkout with dagster_consumer/stream.py"
    )


def start_consumer(kind: str, home: Path, definitions_file: Path, log_path: Path) -> ManagedProcess:
    """The consumer in its own process group (stopped by the caller)."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    if kind == "sensor":
        argv = [sys.executable, "-m", "bench.sustained", "--sensor-loop", str(home), str(definitions_file)]
    else:
        argv = [_airstream_executable(), "stream", "--instance", INSTANCE, "-f", str(definitions_file)]
        argv += ["--dagster-home", str(home)]
    return ManagedProcess.start(f"{kind} consumer", argv, env=env, cwd=REPO_ROOT, log_path=log_path)


# --- the run ---------------------------------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50, p95 and max (2 decimals); ``None`` when there are no values."""
    if not values:
        return {"p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2), "max": round(ordered[-1], 2)}


@contextlib.contextmanager
def _storage(kind: str, work: Path) -> Iterator[Path]:
    """A fresh Dagster home on ``kind`` storage (a PostgreSQL server started for it when asked)."""
    with contextlib.ExitStack() as stack:
        server: PostgresServer | None = stack.enter_context(start_postgres()) if kind == "postgres" else None
        name = f"sustained_{uuid.uuid4().hex[:8]}"
        home = prepare_home(work / "dagster_home", fresh_storage(kind, name, server))
        yield home


def _sample_row(began: float, published: Published, recorded: RecordedIds, oldest: int) -> tuple[dict[str, Any], int]:
    """One sample, and the index of the oldest published event not recorded yet."""
    count, ids, times = published.snapshot()
    while oldest < count and ids[oldest] in recorded.first_stored:
        oldest += 1
    now = time.time()
    distinct = len(recorded.first_stored)
    sample = {
        "t": round(now - began, 1),
        "published": count,
        "recorded": distinct,
        "lag_events": max(0, count - distinct),
        "lag_seconds": round(now - times[oldest], 2) if oldest < count else 0.0,
    }
    return sample, oldest


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Publish, sample and judge (see the module docstring); returns the results, also written to ``--out``."""
    from dagster import DagsterInstance

    facts = machine()
    if args.consumer == "stream":
        missing = stream_available()
        if missing:
            raise SystemExit(f"bench.sustained: {missing}")
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="bench-sustained-") as scratch, contextlib.ExitStack() as stack:
        work = Path(scratch)
        broker = stack.enter_context(start_broker(work / "broker"))
        topic = f"bench-sustained-{uuid.uuid4().hex[:8]}"
        create_topic(broker.bootstrap_servers, topic, partitions=3)
        home = stack.enter_context(_storage(args.storage, work))
        definitions_file = work / "sustained_definitions.py"
        definitions_file.write_text(
            _DEFINITIONS.format(dags=DAGS, instance=INSTANCE, servers=broker.bootstrap_servers, topic=topic)
        )
        consumer = stack.enter_context(
            start_consumer(args.consumer, home, definitions_file, work / f"{args.consumer}-consumer.log")
        )
        instance = stack.enter_context(DagsterInstance.from_config(str(home)))
        recorded = RecordedIds(instance)
        time.sleep(2)  # the consumer's start-up (imports, first connection) is not lag
        if not consumer.is_alive():
            raise StackError(f"the {args.consumer} consumer exited at start:\n{consumer.log_tail()}")
        published = Published()
        producer = threading.Thread(
            target=publish_paced,
            args=(broker.bootstrap_servers, topic, args.rate, seconds, published),
            name="paced producer",
            daemon=True,
        )
        began = time.time()
        producer.start()
        print(f"{'t (s)':>7} {'published':>10} {'recorded':>9} {'lag events':>11} {'lag s':>7}", flush=True)
        samples: list[dict[str, Any]] = []
        oldest = 0
        drained_at: float | None = None
        while True:
            tick = time.monotonic()
            recorded.poll()
            sample, oldest = _sample_row(began, published, recorded, oldest)
            samples.append(sample)
            print(
                f"{sample['t']:>7.1f} {sample['published']:>10,} {sample['recorded']:>9,} "
                f"{sample['lag_events']:>11,} {sample['lag_seconds']:>7.2f}",
                flush=True,
            )
            if published.error is not None:
                raise StackError(f"the producer failed: {published.error!r}")
            finished = published.finished_at
            if finished is not None and sample["lag_events"] == 0:
                drained_at = time.time()
                break
            if finished is not None and time.time() - finished > args.drain_seconds:
                break
            if not consumer.is_alive():
                raise StackError(f"the {args.consumer} consumer exited ({consumer.returncode}):\n{consumer.log_tail()}")
            time.sleep(max(0.0, args.sample_seconds - (time.monotonic() - tick)))
        producer.join(timeout=60)
        consumer.stop()
        recorded.poll()  # what the consumer stored while it was stopped
        consumer_log = consumer.log_tail(15)
    count, ids, times = published.snapshot()
    published_at = dict(zip(ids, times, strict=True))
    recorded_ids = set(recorded.first_stored)
    per_event = [stored - published_at[i] for i, stored in recorded.first_stored.items() if i in published_at]
    lag_seconds = [sample["lag_seconds"] for sample in samples]
    results: dict[str, Any] = {
        "started": datetime.fromtimestamp(began, timezone.utc).isoformat(timespec="seconds"),
        "rate": args.rate,
        "minutes": args.minutes,
        "storage": args.storage,
        "consumer": args.consumer,
        "dags": DAGS,
        "sample_seconds": args.sample_seconds,
        "machine": {**facts, "load_average_at_end": os.getloadavg()},
        "lag_seconds": percentiles(lag_seconds),
        "max_lag_events": max((sample["lag_events"] for sample in samples), default=0),
        "record_latency_seconds": percentiles(per_event),
        "producer": {
            "events": count,
            "achieved_rate": round(count / max(1e-9, (published.finished_at or began) - began), 1),
            "most_behind_schedule_seconds": round(published.most_behind_seconds, 2),
        },
        "drained_seconds_after_last_event": (
            round(drained_at - published.finished_at, 1) if drained_at and published.finished_at else None
        ),
        "totals": {
            "published": count,
            "recorded": len(recorded_ids & set(ids)),
            "materializations": recorded.materializations,
        },
        "exactly_once": {
            "published": count,
            "recorded_distinct": len(recorded_ids),
            "duplicates": recorded.duplicates,
            "missing": len(set(ids) - recorded_ids),  # not recorded when the run stopped (see drained_...)
            "unexpected": len(recorded_ids - set(ids)),
            "ok": recorded.duplicates == 0 and recorded_ids == set(ids),
            "no_duplicates": recorded.duplicates == 0 and not recorded_ids - set(ids),
        },
        "samples": samples,
        "consumer_log_tail": consumer_log.splitlines(),
    }
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.sensor_loop:
        return _sensor_loop(*args.sensor_loop)
    results = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    lag, once = results["lag_seconds"], results["exactly_once"]
    print(
        f"lag (s) p50 {lag['p50']} p95 {lag['p95']} max {lag['max']}; max lag {results['max_lag_events']:,} events; "
        f"record latency p50 {results['record_latency_seconds']['p50']} s; "
        f"recorded {once['recorded_distinct']:,} of {once['published']:,} published, {once['duplicates']} duplicates, "
        f"{once['missing']} missing when stopped: exactly once {'yes' if once['ok'] else 'NO'}"
    )
    if results["drained_seconds_after_last_event"] is None:
        print(f"not drained: {once['missing']:,} events were still unrecorded --drain-seconds after the last one")
    print(f"results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
