"""Consumer throughput: airstream's sensor and replay beside Dagster's own per-event write loop.

For each storage (SQLite, PostgreSQL) and in the same run: N task-success events of distinct runs
(:func:`bench.replay._events`) are published to a fresh topic, then timed into fresh Dagster
instances on that storage

* ``sensor``: airstream's sensor evaluated tick after tick and its asset events stored one by one,
  as Dagster's daemon stores them (:func:`devstack.dagster.tick_and_store`);
* ``replay``: ``airstream replay -f`` :mod:`bench.compare.definitions` (the same consume step, a bounded loop);
* ``stream``: ``airstream stream -f`` :mod:`bench.compare.definitions` as a subprocess
  (:mod:`bench.compare.stream_process`), timed from its "reading ... from" line (definitions
  loaded, instance opened, lease taken: its start-up left out, the broker connection kept in) to
  the storage time of the last of the N events' records (Dagster's event-log timestamp); its
  start-up is reported beside it, and the rate over the whole process life too;
* ``dagster_loop``: Dagster's own ``report_runless_asset_event`` over the same translated asset events.

No task is mapped, and the DAG assets keep every event (``dag_asset_history="all"``), so each
Airflow event is one record on its DAG's asset in all four.

A profiled pass of the sensor says where the time goes (``profile``).
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dagster import DagsterInstance
from kafka import KafkaProducer

from airstream.dagster_consumer import AirflowInstance, AssetMappings, KafkaEventSource, build_airflow_event_sensor
from airstream.dagster_consumer.cli import main as airstream_main
from airstream.dagster_consumer.translate import translate
from airstream.schemas import message_key, serialize_event
from bench.compare.dagster_dev import DEFINITIONS, fresh_storage, prepare_home
from bench.compare.stream_process import recorded_count, start_stream, stop_stream
from bench.replay import _events
from devstack.broker import create_topic
from devstack.dagster import recorded_asset_events, tick_and_store
from devstack.postgres import PostgresServer


def publish_events(bootstrap_servers: str, count: int) -> str:
    """A fresh topic holding ``count`` task-success events; returns its name."""
    topic = f"bench-throughput-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap_servers, topic, partitions=3)
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=20)
    for event in _events(count):
        producer.send(topic, key=message_key(event.instance, event.dag_id), value=serialize_event(event))
    producer.flush(timeout=120)
    producer.close()
    return topic


@contextlib.contextmanager
def _instance(work: Path, kind: str, label: str, postgres: PostgresServer | None) -> Iterator[DagsterInstance]:
    name = f"tp_{label}_{uuid.uuid4().hex[:6]}"
    home = prepare_home(work / name, fresh_storage(kind, name, postgres))
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance


MAPPINGS = AssetMappings(dag_asset_history="all")


def _asset_events(count: int) -> list[Any]:
    return [asset_event for event in _events(count) for asset_event in translate(event, mappings=MAPPINGS)]


def _sensor_pass(instance: DagsterInstance, bootstrap_servers: str, topic: str, count: int) -> float:
    """Seconds for the sensor to record ``count`` events, tick after tick."""
    source = KafkaEventSource(bootstrap_servers=bootstrap_servers, topic=topic, max_seconds_per_tick=30)
    sensor = build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name="bench", event_source=source), mappings=MAPPINGS
    )
    expected = len(_asset_events(count))
    cursor: str | None = None
    stored = 0
    began = time.perf_counter()
    while stored < expected:
        cursor, added = tick_and_store(sensor, instance, cursor)
        if added == 0:
            raise RuntimeError(f"the sensor stopped after {stored} of {expected} asset events")
        stored += added
    return time.perf_counter() - began


def _loop_pass(instance: DagsterInstance, count: int) -> float:
    asset_events = _asset_events(count)
    began = time.perf_counter()
    for asset_event in asset_events:
        instance.report_runless_asset_event(asset_event)
    return time.perf_counter() - began


def _replay_pass(work: Path, kind: str, postgres: PostgresServer | None, bootstrap_servers: str, topic: str) -> float:
    name = f"tp_replay_{uuid.uuid4().hex[:6]}"
    home = prepare_home(work / name, fresh_storage(kind, name, postgres))
    argv = ["replay", "--instance", "bench", "--bootstrap-servers", bootstrap_servers, "--topic", topic]
    argv += ["-f", str(DEFINITIONS)]
    observers = {"airstream": [{"name": "bench", "bootstrap_servers": bootstrap_servers, "topic": topic}]}
    observers["airstream"][0]["dag_asset_history"] = "all"
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["BENCH_OBSERVERS"] = json.dumps(observers)
    output = io.StringIO()
    try:
        began = time.perf_counter()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            status = airstream_main(argv)
        seconds = time.perf_counter() - began
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous
    if status != 0:
        raise RuntimeError(f"airstream replay failed ({status}):\n{output.getvalue()[-2000:]}")
    return seconds


def _stream_pass(
    work: Path, kind: str, postgres: PostgresServer | None, bootstrap_servers: str, topic: str, count: int
) -> dict[str, Any]:
    """``airstream stream`` into a fresh instance until it has recorded ``count`` events: its
    seconds from the "reading" line to the last record stored, its start-up, and what it stored."""
    name = f"tp_stream_{uuid.uuid4().hex[:6]}"
    home = prepare_home(work / name, fresh_storage(kind, name, postgres))
    entry = {"name": "bench", "bootstrap_servers": bootstrap_servers, "topic": topic, "dag_asset_history": "all"}
    process, started, reading = start_stream(home, "bench", {"airstream": [entry]}, log_path=work / f"{name}.log")
    with process, DagsterInstance.from_config(str(home)) as instance:
        deadline = time.monotonic() + max(300.0, count / 20)  # 20 events/s: far below any storage's loop
        while (recorded := recorded_count(instance, "bench")) < count:
            if time.monotonic() > deadline or not process.is_alive():
                raise RuntimeError(
                    f"airstream stream recorded {recorded} of {count} events (alive: {process.is_alive()}); "
                    f"log {process.log_path}:\n{process.log_tail()}"
                )
            time.sleep(0.25)
        exit_code = stop_stream(process)
        stored = [record for record in recorded_asset_events(instance) if "airflow/event_type" in record.metadata]
    last = max(record.timestamp for record in stored)
    return {
        "seconds": last - reading,
        "startup_seconds": round(reading - started, 2),
        "wall_seconds": round(last - started, 2),
        "records": len(stored),
        "exit_code": exit_code,
    }


def profile_summary(profile: cProfile.Profile, top: int = 12) -> dict[str, Any]:
    """The share of the profiled time inside Dagster's per-event write, and the top functions by cumulative time."""
    stats = pstats.Stats(profile)
    total = max(stats.total_tt, 1e-9)  # type: ignore[attr-defined]
    rows = []
    write_seconds = 0.0
    for (filename, line, function), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{_short(filename)}:{line}({function})"
        rows.append({"function": where, "calls": calls, "tottime": round(tottime, 3), "cumtime": round(cumtime, 3)})
        if function == "report_runless_asset_event" and "dagster" in filename:
            write_seconds = max(write_seconds, cumtime)
    rows.sort(key=lambda row: row["cumtime"], reverse=True)
    by_self = sorted(rows, key=lambda row: row["tottime"], reverse=True)
    return {
        "total_seconds": round(total, 3),
        "report_runless_asset_event_share": round(write_seconds / total, 3),
        "top_cumulative": rows[:top],
        "top_self": by_self[:top],
    }


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def measure_throughput(
    work: Path, kind: str, *, bootstrap_servers: str, events: int, postgres: PostgresServer | None
) -> dict[str, Any]:
    """Events per second of the sensor, replay, the stream and Dagster's own loop on storage ``kind``,
    and a sensor profile."""
    topic = publish_events(bootstrap_servers, events)
    with _instance(work, kind, "sensor", postgres) as instance:
        sensor_seconds = _sensor_pass(instance, bootstrap_servers, topic, events)
    with _instance(work, kind, "loop", postgres) as instance:
        loop_seconds = _loop_pass(instance, events)
    replay_seconds = _replay_pass(work, kind, postgres, bootstrap_servers, topic)
    stream = _stream_pass(work, kind, postgres, bootstrap_servers, topic, events)
    profiled_events = min(events, 1000)
    profiled_topic = publish_events(bootstrap_servers, profiled_events)
    profile = cProfile.Profile()
    with _instance(work, kind, "profile", postgres) as instance:
        profile.enable()
        _sensor_pass(instance, bootstrap_servers, profiled_topic, profiled_events)
        profile.disable()
    rates = {
        "sensor": events / sensor_seconds,
        "replay": events / replay_seconds,
        "stream": events / stream["seconds"],
        "dagster_loop": events / loop_seconds,
    }
    return {
        "storage": kind,
        "events": events,
        "events_per_second": {name: round(rate, 1) for name, rate in rates.items()},
        "sensor_vs_loop": round(rates["sensor"] / rates["dagster_loop"], 2),
        "replay_vs_loop": round(rates["replay"] / rates["dagster_loop"], 2),
        "stream_vs_loop": round(rates["stream"] / rates["dagster_loop"], 2),
        "stream": {
            "timed": "from its 'reading ... from' line to the last record's event-log timestamp",
            "seconds": round(stream["seconds"], 2),
            "startup_seconds": stream["startup_seconds"],
            "events_per_second_with_startup": round(events / stream["wall_seconds"], 1),
            "records": stream["records"],
            "exit_code": stream["exit_code"],
        },
        "profile": {"events": profiled_events, **profile_summary(profile)},
    }
