"""Delay from an Airflow task's end to its materialization stored in Dagster.

    .venv/bin/python -m bench.latency --runs 5

Starts the local stack (embedded broker, Airflow scheduler, ``dagster dev``), triggers
``example_etl`` RUNS times, and reports, for the ``load`` task's ``warehouse_orders``
materializations, the time from the task's end (Airflow's end_date) to the event's storage in
Dagster. The sensor daemon ticks every 5 s at most, which bounds the delay from below.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from dagster import DagsterInstance

from devstack.dagster import recorded_asset_events
from devstack.stack import local_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work, local_stack(Path(work), instance_name="bench") as stack:
        print(f"stack started in {stack.started_in_seconds:.1f} s")
        api = stack.airflow.api()
        instance = DagsterInstance.from_config(str(stack.dagster_home))
        for _ in range(args.runs):
            run_id = api.trigger("example_etl")
            api.wait_for_run("example_etl", run_id)
        delays: list[float] = []
        deadline = time.monotonic() + 60
        while len(delays) < args.runs and time.monotonic() < deadline:
            time.sleep(1)
            delays = [
                event.timestamp - float(event.metadata["airflow/end_date"])  # a timestamp: seconds since the epoch
                for event in recorded_asset_events(instance)
                if event.asset_key == "warehouse_orders" and event.kind == "materialization"
            ]
    delays.sort()
    print(f"materializations: {len(delays)} of {args.runs}")
    print(
        f"delay task end -> stored materialization: min {delays[0]:.2f} s, p50 {statistics.median(delays):.2f} s, "
        f"max {delays[-1]:.2f} s"
    )


if __name__ == "__main__":
    main()
