"""``airstream-spool``: look at and flush the listener's spool by hand.

    airstream-spool status          how many events wait, and where; how many were dead-lettered
                                    or not spooled (spool full)
    airstream-spool flush           deliver them now (ignores the broker back-off)

Reads the same ``[airstream]`` configuration as the listener, so run it where Airflow runs.
"""

from __future__ import annotations

import argparse
import sys

from airstream.airflow_listener.config import ListenerConfig, ListenerConfigError
from airstream.airflow_listener.delivery import Publisher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airstream-spool", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["status", "flush"])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds flush may take (default 60)")
    args = parser.parse_args(argv)
    try:
        config = ListenerConfig.from_airflow()
    except ListenerConfigError as error:
        print(f"airstream-spool: {error}", file=sys.stderr)
        return 2
    publisher = Publisher(config)
    waiting = publisher.spool.count()
    if args.command == "status":
        print(f"{waiting} event(s) waiting in {config.spool_dir}")
        dropped = publisher.spool.dropped()
        if dropped:
            print(
                f"{dropped.get('count')} event(s) NOT spooled because the spool was full (max_spool_events="
                f"{config.max_spool_events}); last: {dropped.get('last_event')} at {dropped.get('last_at')}: "
                f"{dropped.get('last_reason')}. Delete {publisher.spool.dropped_file} to reset the count."
            )
        dead = publisher.spool.dead_letter_count()
        if dead:
            print(f"{dead} event(s) the broker refused for good in {publisher.spool.dead_letter_directory}")
        return 0
    delivered = publisher.drain(timeout=args.timeout, ignore_backoff=True)
    left = publisher.spool.count()
    print(f"delivered {delivered} event(s) to {config.bootstrap_servers} topic {config.topic}; {left} left")
    return 0 if left == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
