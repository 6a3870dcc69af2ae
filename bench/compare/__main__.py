"""``python -m bench.compare``: airstream beside Dagster's Airlift, in one run (see :mod:`bench.compare`)."""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.compare import airflows, overhead, report, targets, throughput
from bench.compare.machine import machine
from bench.compare.observed import Observer
from bench.compare.phases import PhaseResult, Setup, observe
from devstack.broker import create_topic, start_broker
from devstack.counting_proxy import CountingProxy
from devstack.postgres import PostgresServer, start_postgres

RESULTS = Path(__file__).resolve().parents[2] / "docs" / "bench"
# latency: Airflow 2.11 side by side (and the load at the first DAG count); load: the REST load per
# DAG count; airflow3: airstream alone on Airflow 3.3; overhead: the listener's; throughput: the consumer's.
SECTIONS = ("latency", "load", "airflow3", "overhead", "throughput")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description="airstream beside Dagster's Airlift")
    parser.add_argument("--runs", type=int, default=50, help="DAG runs per latency phase (default 50)")
    parser.add_argument(
        "--dag-counts", default="10,100,1000", help="DAG counts for the load phases (default 10,100,1000)"
    )
    parser.add_argument("--storages", default="sqlite,postgres", help="Dagster storages of the latency phases")
    parser.add_argument("--idle-seconds", type=float, default=120, help="idle window per load phase (default 120)")
    parser.add_argument("--airlift-fast-interval", type=int, default=1, help="Airlift's fastest sensor interval")
    parser.add_argument("--throughput-events", type=int, default=5000, help="events per throughput pass")
    parser.add_argument("--overhead-events", type=int, default=500, help="events per listener-overhead pass")
    parser.add_argument(
        "--gap-repair-interval",
        type=float,
        default=30,
        help="seconds between the gap-repair observer's REST sweeps in the load phases (default 30; --quick: 5)",
    )
    parser.add_argument("--skip-airflow3", action="store_true", help="leave out airstream on Airflow 3.3")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"the sections to run, comma-separated, of {','.join(SECTIONS)} (default all); e.g. --only load",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: 5 runs, 10 DAGs, SQLite, short windows")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"where results.json and latency.png go ({RESULTS})")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.dag_counts, args.storages = min(args.runs, 5), "10", "sqlite"
        args.idle_seconds, args.throughput_events, args.overhead_events = 15, 300, 50
        args.gap_repair_interval = min(args.gap_repair_interval, 5)
    args.dag_counts = [int(count) for count in str(args.dag_counts).split(",")]
    args.storages = [storage.strip() for storage in str(args.storages).split(",")]
    if not set(args.storages) <= {"sqlite", "postgres"}:
        parser.error("--storages takes sqlite and/or postgres")
    args.only = [section.strip() for section in str(args.only).split(",") if section.strip()]
    if not args.only or not set(args.only) <= set(SECTIONS):
        parser.error(f"--only takes sections of {','.join(SECTIONS)}, comma-separated")
    if args.gap_repair_interval <= 0:
        parser.error("--gap-repair-interval must be positive")
    return args


def mapped_tasks(dag_count: int) -> dict[str, list[str]]:
    """The tasks every observer maps to assets: those of the DAGs the runs use (:func:`bench.compare.runs.dag_for`)."""
    return {f"bench_{n:04d}": ["work"] for n in range(min(10, dag_count))} | {"bench_failing": ["extract", "load"]}


def side_by_side(
    work: Path,
    args: argparse.Namespace,
    bootstrap: str,
    postgres: PostgresServer | None,
    results: dict[str, Any],
    save: Callable[[], None],
) -> None:
    """Airflow 2.11 watched by airstream's sensor, ``airstream stream`` and Airlift at its default and
    fastest intervals.

    The stream records the same topic into a Dagster instance of its own on the phase's storage
    (:mod:`bench.compare.stream_process`), in the latency phases only. Like the sensor, it is never
    given an Airflow URL: its counting proxy shows it makes no REST request.

    A fifth observer, airstream's sensor with REST gap repair every ``--gap-repair-interval``
    seconds, is there for its REST load (its latency is not measured). Its instance name is not the
    listener's, so its Kafka path records nothing and every terminal state reaches it through a
    sweep: what one sweep asks of Airflow does not depend on what the topic held, and this is the
    most a sweep records.
    """
    topic = f"bench-af2-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, partitions=3)
    first = args.dag_counts[0]
    with airflows.airflow2(work, bootstrap_servers=bootstrap, topic=topic, name="af2", dag_count=first) as (
        venv,
        env,
        af,
    ):
        if "overhead" in args.only:
            results["overhead"]["memory"] = overhead.listener_memory(venv, env, bootstrap)
        if "latency" not in args.only and "load" not in args.only:
            return
        api = af.api()
        gap = args.gap_repair_interval
        observers = [
            Observer("af2", "airstream", "airstream (Kafka sensor)"),
            Observer("af2_stream", "airstream", "airstream (stream)", stream_of="af2"),
            Observer("airlift_default", "airlift", "Airlift (30 s, default)"),
            Observer("airlift_fast", "airlift", f"Airlift ({args.airlift_fast_interval} s, fastest)"),
        ]
        if "load" in args.only:
            observers.append(
                Observer("af2_gap", "airstream", f"airstream (Kafka sensor + gap repair every {gap:g} s)", gap)
            )
        intervals = {"airlift_default": 30, "airlift_fast": args.airlift_fast_interval}
        with contextlib.ExitStack() as stack:
            proxies = {o.name: stack.enter_context(CountingProxy(af.url)) for o in observers}
            config = {
                "airstream": [
                    {"name": o.name, "bootstrap_servers": bootstrap, "topic": topic}
                    | (
                        {"gap_repair_url": proxies[o.name].url, "gap_repair_interval": gap}
                        if o.gap_repair_interval
                        else {}
                    )
                    for o in observers
                    if o.kind == "airstream" and o.stream_of is None
                ],
                "airlift": [{"name": n, "url": proxies[n].url, "interval": i} for n, i in intervals.items()],
                "mapped_tasks": mapped_tasks(first),
            }
            setup = Setup(observers, config, proxies, intervals)

            def load_entry(count: int, storage: str, phase: PhaseResult) -> dict[str, Any]:
                return {
                    "dag_count": count,
                    "storage": storage,
                    "labels": {o.name: o.label for o in observers},
                    "kinds": {o.name: o.kind for o in observers},
                    "consumers": {o.name: o.consumer for o in observers},
                    "gap_repair": setup.gap_repair,
                    "observers": phase.load,
                }

            for index, storage in enumerate(args.storages if "latency" in args.only else []):
                print(f"== Airflow 2.11, {storage}: {args.runs} runs, {first} DAGs", flush=True)
                phase = observe(
                    work,
                    setup,
                    api=api,
                    storage=storage,
                    postgres=postgres,
                    dag_count=first,
                    runs=args.runs,
                    idle_seconds=args.idle_seconds,
                    measure_latency=True,
                )
                assert phase.driven is not None
                results["latency"].append(
                    {
                        "airflow": "2.11",
                        "storage": storage,
                        "dag_count": first,
                        "runs": phase.driven.as_json(),
                        "observers": phase.observed,
                    }
                )
                if index == 0 and "load" in args.only:
                    results["load"].append(load_entry(first, storage, phase))
                save()
            if "load" not in args.only:
                return
            for count in args.dag_counts if "latency" not in args.only else args.dag_counts[1:]:
                print(f"== Airflow 2.11, load with {count} DAGs", flush=True)
                expected = airflows.set_dag_count(Path(env["AIRFLOW__CORE__DAGS_FOLDER"]), count)
                airflows.wait_for_dags(api, expected)
                phase = observe(
                    work,
                    setup,
                    api=api,
                    storage=args.storages[0],
                    postgres=postgres,
                    dag_count=count,
                    runs=min(10, max(3, args.runs // 5)),
                    idle_seconds=args.idle_seconds,
                    measure_latency=False,
                )
                results["load"].append(load_entry(count, args.storages[0], phase))
                save()


def airflow3_alone(
    work: Path, args: argparse.Namespace, bootstrap: str, postgres: PostgresServer | None, results: dict[str, Any]
) -> None:
    """airstream alone on Airflow 3.3, its sensor and its stream (Airlift cannot observe Airflow 3)."""
    topic = f"bench-af3-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap, topic, partitions=3)
    first = args.dag_counts[0]
    with airflows.airflow3(work, bootstrap_servers=bootstrap, topic=topic, name="af3", dag_count=first) as af:
        observers = [
            Observer("af3", "airstream", "airstream (Kafka sensor)"),
            Observer("af3_stream", "airstream", "airstream (stream)", stream_of="af3"),
        ]
        config = {
            "airstream": [{"name": "af3", "bootstrap_servers": bootstrap, "topic": topic}],
            "mapped_tasks": mapped_tasks(first),
        }
        storage = args.storages[0]
        print(f"== Airflow 3.3, {storage}: {args.runs} runs", flush=True)
        phase = observe(
            work,
            Setup(observers, config),
            api=af.api(),
            storage=storage,
            postgres=postgres,
            dag_count=first,
            runs=args.runs,
            idle_seconds=0.1,
            measure_latency=True,
        )
        assert phase.driven is not None
        results["latency"].append(
            {
                "airflow": "3.3",
                "storage": storage,
                "dag_count": first,
                "runs": phase.driven.as_json(),
                "observers": phase.observed,
            }
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement; returns the results dictionary, also saved to ``--out`` after each section
    (``"complete": false`` until the end), so a run cut short keeps what it measured."""
    results: dict[str, Any] = {
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "complete": False,
        "machine": machine(),
        "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "latency": [],
        "load": [],
        "overhead": {},
        "throughput": [],
    }
    began = time.monotonic()

    def save() -> None:
        results["seconds"] = round(time.monotonic() - began, 1)
        results["targets"] = targets.evaluate(
            results,
            sustained=targets.read_sustained(args.out),
            replays=targets.read_runs(args.out, "replay-*.json"),
        )
        report.write_json(results, args.out / "results.json")

    with tempfile.TemporaryDirectory(prefix="bench-compare-") as scratch, contextlib.ExitStack() as stack:
        work = Path(scratch)
        broker = stack.enter_context(start_broker(work / "broker"))
        postgres = stack.enter_context(start_postgres())
        if "overhead" in args.only:
            print("== listener overhead", flush=True)
            results["overhead"]["timing"] = overhead.listener_timing(
                work / "overhead", broker.bootstrap_servers, args.overhead_events
            )
        if {"latency", "load", "overhead"} & set(args.only):
            side_by_side(work, args, broker.bootstrap_servers, postgres, results, save)
        if "airflow3" in args.only and not args.skip_airflow3:
            airflow3_alone(work, args, broker.bootstrap_servers, postgres, results)
            save()
        for storage in ("sqlite", "postgres") if "throughput" in args.only else ():
            print(f"== consumer throughput, {storage}", flush=True)
            results["throughput"].append(
                throughput.measure_throughput(
                    work / "throughput",
                    storage,
                    bootstrap_servers=broker.bootstrap_servers,
                    events=args.throughput_events,
                    postgres=postgres,
                )
            )
            save()
    results["complete"] = True
    save()
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = run(args)
    if results["latency"]:
        report.draw_latency(results, args.out / "latency.png")
    print(report.table(results))
    for target in results["targets"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[target["met"]]
        print(f"  [{mark:6}] {target['target']}: {target['measured']}")
    drawn = f", {args.out / 'latency.png'}" if results["latency"] else ""
    print(f"results: {args.out / 'results.json'}{drawn} ({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
