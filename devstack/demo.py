"""The demo: the whole pipeline on this machine, with example DAGs, until Ctrl-C.

    ./scripts/demo             (installs what it needs, then runs ``python -m devstack.demo``)

Starts the embedded broker (or Kafka, see devstack.broker), Airflow 3.3 with the airstream
listener and three example DAGs, and Dagster with the consumer sensor; triggers one run of each
DAG; then prints each asset event Dagster records, with its delay after the Airflow event.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType

from devstack.airflow import PASSWORD, USERNAME
from devstack.dagster import RecordedAssetEvent, recorded_asset_events
from devstack.processes import StackError
from devstack.stack import EXAMPLE_DAG_IDS, LocalStack, local_stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airstream-demo", description="Run the airstream pipeline locally.")
    parser.add_argument("--work-dir", type=Path, default=Path(".work/demo"), help="state and logs (default .work/demo)")
    parser.add_argument("--dagster-port", type=int, default=3000, help="Dagster UI port (default 3000; 0 = any)")
    parser.add_argument("--exit-after", type=float, default=None, help="stop after this many seconds")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored

    print("airstream demo: starting the broker, Airflow and Dagster (about 30 s)…", flush=True)
    try:
        with local_stack(args.work_dir.resolve(), dagster_port=args.dagster_port or None) as stack:
            _print_banner(stack)
            api = stack.airflow.api()
            for dag_id in EXAMPLE_DAG_IDS:
                print(f"  triggered {dag_id}: run {api.trigger(dag_id)}")
            print("\nAsset events recorded by Dagster (Ctrl-C to stop everything):", flush=True)
            _follow_asset_events(stack, args.exit_after)
    except KeyboardInterrupt:
        print("\nstopped every process the demo started.")
    except StackError as error:
        print(f"airstream demo: {error}", file=sys.stderr)
        return 1
    return 0


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


def _follow_asset_events(stack: LocalStack, exit_after: float | None) -> None:
    from dagster import DagsterInstance

    instance = DagsterInstance.from_config(str(stack.dagster_home))
    deadline = None if exit_after is None else time.monotonic() + exit_after
    last_seen = 0
    while deadline is None or time.monotonic() < deadline:
        for event in recorded_asset_events(instance, after_storage_id=last_seen):
            last_seen = max(last_seen, event.storage_id)
            _print_event(event)
        time.sleep(1)


def _print_event(event: RecordedAssetEvent) -> None:
    ended = event.metadata.get("airflow/end_date") or event.metadata.get("airflow/start_date")
    delay = ""
    if ended:
        stored = datetime.fromtimestamp(event.timestamp, tz=timezone.utc)
        delay = f"  {(stored - datetime.fromisoformat(ended)).total_seconds():5.1f} s after Airflow"
    what = "materialized" if event.kind == "materialization" else "observed    "
    task = event.metadata.get("airflow/task_id")
    subject = f"{event.metadata.get('airflow/event_type')}" + (f" ({task})" if task else "")
    print(f"  {what} {event.asset_key:38s} {subject}{delay}")


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
