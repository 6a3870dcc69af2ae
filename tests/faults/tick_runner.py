"""One sensor tick in a process of its own, stored as Dagster's daemon stores it, killable at a
chosen point (run by ``test_consumer_killed.py``; not a test module).

The daemon evaluates the sensor, stores the tick's asset events one by one
(``report_runless_asset_event``), then stores the cursor. This runner does the same against a
persistent Dagster instance (``DAGSTER_HOME``), keeping the cursor in a file (written atomically),
and kills itself with SIGKILL where ``--kill-at`` says:

* ``before-read``: before the sensor reads anything;
* ``after-read``: the sensor has read and translated, nothing is stored;
* ``during-store``: half of the tick's asset events are stored;
* ``after-store``: every asset event is stored, the cursor is not.

Usage: ``python tick_runner.py BOOTSTRAP TOPIC CURSOR_FILE [--kill-at POINT]``; prints the number of
asset events stored.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from dagster import DagsterInstance, build_sensor_context

from devstack.figures import etl_observation_defs

INSTANCE = "faults"
POINTS = ("before-read", "after-read", "during-store", "after-store")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap_servers")
    parser.add_argument("topic")
    parser.add_argument("cursor_file", type=Path)
    parser.add_argument("--kill-at", choices=POINTS)
    args = parser.parse_args()

    def point(name: str) -> None:
        if args.kill_at == name:
            sys.stdout.flush()
            os.kill(os.getpid(), signal.SIGKILL)

    defs = etl_observation_defs(INSTANCE, args.bootstrap_servers, args.topic)
    sensor = defs.resolve_sensor_def(f"{INSTANCE}__airflow_event_sensor")
    cursor = args.cursor_file.read_text() if args.cursor_file.exists() else None
    with DagsterInstance.get() as instance:
        point("before-read")
        result = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=defs))
        point("after-read")
        events = list(result.asset_events)
        for index, asset_event in enumerate(events):
            if index == len(events) // 2:
                point("during-store")
            instance.report_runless_asset_event(asset_event)
        point("after-store")
        if result.cursor is not None:
            temporary = args.cursor_file.with_suffix(".tmp")
            temporary.write_text(result.cursor)
            temporary.replace(args.cursor_file)
    print(len(events))
    return 0


if __name__ == "__main__":
    sys.exit(main())
