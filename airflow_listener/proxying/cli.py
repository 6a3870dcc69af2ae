"""``airstream proxy``: commands on the Airflow side (run where your DAGs import).

::

    airstream proxy scaffold --dags-folder dags/ --out dags/proxied_state
    airstream proxy scaffold --dags-folder dags/ --out dags/proxied_state --overwrite
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from airstream.airflow_listener.proxying.scaffold import scaffold_proxied_state


def main(argv: Sequence[str] | None = None) -> int:
    """The ``airstream proxy`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="airstream proxy", description="migration: proxy Airflow tasks to Dagster")
    commands = parser.add_subparsers(dest="command", required=True)
    scaffold = commands.add_parser(
        "scaffold", help="write <out>/<dag_id>.yaml for every DAG of a DAGs folder, every task proxied: false"
    )
    scaffold.add_argument("--dags-folder", required=True, type=Path, help="the folder Airflow parses")
    scaffold.add_argument("--out", required=True, type=Path, help="the proxied-state folder to write")
    scaffold.add_argument("--overwrite", action="store_true", help="replace files that already exist")
    args = parser.parse_args(argv)
    if not args.dags_folder.is_dir():
        print(f"airstream proxy scaffold: {args.dags_folder} is not a folder", file=sys.stderr)
        return 2
    result = scaffold_proxied_state(args.dags_folder, args.out, overwrite=args.overwrite)
    for path in result.written:
        print(f"wrote {path}")
    for path in result.kept:
        print(f"kept {path} (exists; --overwrite replaces it)")
    for file, error in result.import_errors.items():
        print(f"could not import {file}:\n{error}", file=sys.stderr)
    if not result.written and not result.kept:
        print(f"no DAGs found in {args.dags_folder}", file=sys.stderr)
    return 1 if result.import_errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
