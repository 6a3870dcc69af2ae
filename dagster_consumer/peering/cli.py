"""``airstream peering refresh``: fetch the DAG list and Airflow assets again and store them.

Loads your definitions in-process (as the code location would), finds the Airflow instances
they peer with, fetches each one's snapshot from Airflow and stores it in the Dagster instance
of ``DAGSTER_HOME``, the one your code location uses. The next load of the code location (a
reload in the UI, a restart) shows the new DAGs::

    airstream peering refresh -m my_project.definitions
    airstream peering refresh -f definitions.py --instance prod
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from dagster import DagsterInstance
from dagster.components.definitions import LazyDefinitions

from airstream.dagster_consumer.peering import loader


def main(argv: Sequence[str] | None = None) -> int:
    """The ``airstream`` command (``airstream peering refresh``); returns the exit status."""
    parser = argparse.ArgumentParser(prog="airstream", description="airstream on the Dagster side")
    commands = parser.add_subparsers(dest="command", required=True)
    peering = commands.add_parser("peering", help="Airflow peering (DAGs and Airflow assets as Dagster assets)")
    peering_commands = peering.add_subparsers(dest="peering_command", required=True)
    refresh = peering_commands.add_parser(
        "refresh", help="fetch the DAGs and Airflow assets again and store them in the Dagster instance"
    )
    where = refresh.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "-m", "--module", help="the module holding your Dagster definitions, e.g. my_project.definitions"
    )
    where.add_argument("-f", "--file", help="the Python file holding your Dagster definitions")
    refresh.add_argument(
        "--instance",
        action="append",
        dest="instances",
        metavar="NAME",
        help="only this Airflow instance (repeatable); default: every instance the definitions peer with",
    )
    args = parser.parse_args(argv)
    return refresh_command(module=args.module, file=args.file, instance_names=args.instances)


def refresh_command(*, module: str | None, file: str | None, instance_names: Sequence[str] | None) -> int:
    """Load the definitions, then refresh the peering snapshot of each (selected) Airflow instance."""
    try:
        dagster_instance = DagsterInstance.get()
    except Exception as error:
        print(f"airstream: no Dagster instance ({error}); set DAGSTER_HOME to your deployment's", file=sys.stderr)
        return 2
    with dagster_instance, loader.first_fetch_suppressed():
        _load_definitions(_import(module, file))
        peerings = loader.loaded_peerings()
        chosen = {
            key: peering
            for key, peering in peerings.items()
            if not instance_names or peering.peering_settings().airflow_instance.name in instance_names
        }
        if not chosen:
            found = ", ".join(sorted(p.peering_settings().airflow_instance.name for p in peerings.values())) or "none"
            print(f"airstream: no peered Airflow instance to refresh (found: {found})", file=sys.stderr)
            return 1
        status = 0
        for peering in chosen.values():
            try:
                print(loader.refresh_airflow_peering(peering, instance=dagster_instance).summary())
            except Exception as error:
                name = peering.peering_settings().airflow_instance.name
                print(f"airstream: refreshing Airflow instance {name!r} failed: {error}", file=sys.stderr)
                status = 1
        return status


def _import(module: str | None, file: str | None) -> ModuleType:
    if module:
        sys.path.insert(0, str(Path.cwd()))
        return importlib.import_module(module)
    path = Path(file or "").resolve()
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"airstream: cannot import {path}")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = loaded
    spec.loader.exec_module(loaded)
    return loaded


def _load_definitions(module: ModuleType) -> None:
    """Build what the module defines lazily (``@dagster.definitions``); plain ``Definitions`` were built on import."""
    for value in list(vars(module).values()):
        if isinstance(value, LazyDefinitions):
            value()


if __name__ == "__main__":
    raise SystemExit(main())
