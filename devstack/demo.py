"""The demo: the whole pipeline on this machine, with example DAGs, until Ctrl-C.

    ./scripts/demo             (installs what it needs, then runs ``python -m devstack.demo``)

Starts the embedded broker (or Kafka, see devstack.broker), Airflow 3.3 with the airstream
listener and three example DAGs, and Dagster with the consumer sensor; triggers one run of each
DAG; then prints each asset event Dagster records, with its delay after the Airflow event.

Every start is clean: the embedded broker keeps its topic in memory, so the Airflow database and
the Dagster instance a previous demo left in the work directory (``.work/demo``) are removed
first; otherwise the sensor's saved offsets would point past the end of the new, empty topic.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import time
from collections.abc import Callable, Collection
from pathlib import Path
from types import FrameType
from typing import Any

from devstack.airflow import PASSWORD, USERNAME
from devstack.dagster import RecordedAssetEvent, recorded_asset_events
from devstack.processes import StackError
from devstack.stack import EXAMPLE_DAG_IDS, LocalStack, local_stack

# What the stack writes under its work directory; only these are removed on a clean start.
STATE_ENTRIES = ("airflow", "dagster", "logs", "tls", "tansu.log")
# Dagster's daemon ticks the sensor at most every 5 s: one more tick after the last outcome.
LAST_TICK_SECONDS = 6.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airstream-demo", description="Run the airstream pipeline locally.")
    parser.add_argument("--work-dir", type=Path, default=Path(".work/demo"), help="state and logs (default .work/demo)")
    parser.add_argument("--dagster-port", type=int, default=3000, help="Dagster UI port (default 3000; 0 = any)")
    parser.add_argument("--exit-after", type=float, default=None, help="stop after this many seconds")
    parser.add_argument(
        "--exit-when-recorded",
        action="store_true",
        help="stop once Dagster has recorded the outcome of every run the demo triggered",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored

    work_dir = args.work_dir.resolve()
    removed = clean_work_dir(work_dir)
    if removed:
        print(f"airstream demo: starting clean, removed the previous demo's state in {work_dir}", flush=True)
    print("airstream demo: starting the broker, Airflow and Dagster (about 30 s)…", flush=True)
    try:
        with local_stack(work_dir, dagster_port=args.dagster_port or None) as stack:
            _print_banner(stack)
            api = stack.airflow.api()
            run_ids = {}
            for dag_id in EXAMPLE_DAG_IDS:
                run_ids[dag_id] = api.trigger(dag_id)
                print(f"  triggered {dag_id}: run {run_ids[dag_id]}")
            print("\nAsset events recorded by Dagster (Ctrl-C to stop everything):", flush=True)
            done = _all_recorded(stack.instance_name, set(run_ids.values())) if args.exit_when_recorded else None
            _follow_asset_events(stack, args.exit_after, done)
            if done is not None:
                print(f"\nairstream demo: every run's outcome is recorded in Dagster: {stack.dagster_url}/assets")
    except KeyboardInterrupt:
        print("\nstopped every process the demo started.")
    except StackError as error:
        print(f"airstream demo: {error}", file=sys.stderr)
        return 1
    return 0


def clean_work_dir(work_dir: Path) -> list[Path]:
    """Remove what a previous demo left in ``work_dir`` (only the entries the stack writes);
    returns what was removed."""
    removed = []
    for name in STATE_ENTRIES:
        path = work_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed


def _print_banner(stack: LocalStack) -> None:
    print(
        f"""
Ready in {stack.started_in_seconds:.0f} s.
  Airflow UI  {stack.airflow.url}   (user {USERNAME}, password {PASSWORD})
  Dagster UI  {stack.dagster_url}/assets   (sensor: {stack.instance_name}__airflow_event_sensor)
  Broker      {stack.broker.bootstrap_servers} ({stack.broker.kind}), topic {stack.topic}
  Logs        {stack.airflow.processes[0].log_path.parent}
""",
        flush=True,
    )


def _all_recorded(instance_name: str, run_ids: Collection[str]) -> Callable[[list[RecordedAssetEvent]], bool]:
    """A test on everything recorded so far: does every run in ``run_ids`` have its outcome on its DAG asset?"""
    prefix = f"{instance_name}/dag/"

    def done(recorded: list[RecordedAssetEvent]) -> bool:
        finished = {
            event.metadata.get("airflow/run_id")
            for event in recorded
            if event.asset_key.startswith(prefix) and event.metadata.get("airflow/state") in ("success", "failed")
        }
        return set(run_ids) <= finished

    return done


def _follow_asset_events(
    stack: LocalStack, exit_after: float | None, done: Callable[[list[RecordedAssetEvent]], bool] | None = None
) -> None:
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(stack.dagster_home))
    deadline = None if exit_after is None else time.monotonic() + exit_after
    last_seen = 0
    recorded: list[RecordedAssetEvent] = []
    while deadline is None or time.monotonic() < deadline:
        for event in recorded_asset_events(instance, after_storage_id=last_seen):
            last_seen = max(last_seen, event.storage_id)
            recorded.append(event)
            _print_event(event)
        if done is not None and done(recorded):
            time.sleep(LAST_TICK_SECONDS)  # what the same tick or the next one still records
            for event in recorded_asset_events(instance, after_storage_id=last_seen):
                _print_event(event)
            return
        time.sleep(1)


def _print_event(event: RecordedAssetEvent) -> None:
    metadata = event.metadata
    ended = metadata.get("airflow/end_date") or metadata.get("airflow/start_date")
    delay = ""
    if isinstance(ended, (int, float)):
        delay = f"  {event.timestamp - ended:5.1f} s after Airflow"
    what = "materialized" if event.kind == "materialization" else "observed    "
    print(f"  {what} {event.asset_key:28s} {_subject(metadata)}{delay}")


def _subject(metadata: dict[str, Any]) -> str:
    state = metadata.get("airflow/state", "?")
    task = metadata.get("airflow/task_id")
    if task:
        index = metadata.get("airflow/map_index", -1)
        label = f"{task}[{index}]" if isinstance(index, int) and index >= 0 else str(task)
        return f"task {label} {state} (try {metadata.get('airflow/try_number', '?')})"
    if "airflow/asset_uri" in metadata:
        return f"Airflow asset {metadata['airflow/asset_uri']} updated"
    tasks = metadata.get("airflow/tasks")
    return f"run {metadata.get('airflow/run_id', '?')} {state}" + (f": {tasks}" if tasks else "")


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
