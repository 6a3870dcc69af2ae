"""The ``airstream`` command: dispatches to the side that owns a subcommand.

``airstream proxy ...`` runs on the Airflow side (it imports your DAGs, so it needs the
``airflow`` extra); every other subcommand (``peering``, ``replay``) runs on the Dagster side
(the ``dagster`` extra). Each side is imported only when its command runs, so an environment
with one side installed can run that side's commands.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

AIRFLOW_SIDE_COMMANDS = {"proxy": "airstream.airflow_listener.proxying.cli"}
DAGSTER_SIDE_CLI = "airstream.dagster_consumer.cli"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``airstream ARGS``; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else None
    if command in AIRFLOW_SIDE_COMMANDS:
        module, rest, side = AIRFLOW_SIDE_COMMANDS[command], args[1:], "airflow"
    else:
        module, rest, side = DAGSTER_SIDE_CLI, args, "dagster"
    try:
        cli = importlib.import_module(module)
    except ImportError as error:
        print(
            f"airstream {command or ''}: this command needs the {side} side installed "
            f'(pip install "airstream[{side}]"): {error}',
            file=sys.stderr,
        )
        return 2
    status: int = cli.main(rest)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
