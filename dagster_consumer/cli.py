"""The ``airstream`` command on the Dagster side: ``airstream peering refresh``, ``airstream replay``
and ``airstream stream``.

Each loads your definitions in-process (as the code location would) with
:func:`load_user_definitions`, so what they do matches what the code location does::

    airstream peering refresh -m my_project.definitions
    airstream replay --instance prod -m my_project.definitions --since 2026-11-01
    airstream stream --instance prod -m my_project.definitions
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from dagster.components.definitions import LazyDefinitions


def main(argv: Sequence[str] | None = None) -> int:
    """The ``airstream`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="airstream", description="airstream on the Dagster side")
    commands = parser.add_subparsers(dest="command", required=True)
    peering = commands.add_parser("peering", help="Airflow peering (DAGs and Airflow assets as Dagster assets)")
    peering_commands = peering.add_subparsers(dest="peering_command", required=True)
    refresh = peering_commands.add_parser(
        "refresh", help="fetch the DAGs and Airflow assets again and store them in the Dagster instance"
    )
    where = refresh.add_mutually_exclusive_group(required=True)
    _definitions_options(where)
    refresh.add_argument(
        "--instance",
        action="append",
        dest="instances",
        metavar="NAME",
        help="only this Airflow instance (repeatable); default: every instance the definitions peer with",
    )
    from airstream.dagster_consumer.replay import add_replay_parser

    add_replay_parser(commands)
    from airstream.dagster_consumer.stream import add_stream_parser

    add_stream_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "replay":
        from airstream.dagster_consumer.replay import replay_command

        return replay_command(args, parser)
    if args.command == "stream":
        from airstream.dagster_consumer.stream import stream_command

        return stream_command(args)
    from airstream.dagster_consumer.peering.cli import refresh_command

    return refresh_command(module=args.module, file=args.file, instance_names=args.instances)


def _definitions_options(group: argparse._MutuallyExclusiveGroup) -> None:
    group.add_argument(
        "-m", "--module", help="the module holding your Dagster definitions, e.g. my_project.definitions"
    )
    group.add_argument("-f", "--file", help="the Python file holding your Dagster definitions")


def definitions_options(parser: argparse.ArgumentParser, *, required: bool) -> None:
    """``-m MODULE`` / ``-f FILE``, one of them (``required``) or neither."""
    _definitions_options(parser.add_mutually_exclusive_group(required=required))


def load_user_definitions(module: str | None, file: str | None) -> ModuleType:
    """Import the module (``-m``) or file (``-f``) and build what it defines lazily
    (``@dagster.definitions``); plain ``Definitions`` are built on import."""
    loaded = _import(module, file)
    for value in list(vars(loaded).values()):
        if isinstance(value, LazyDefinitions):
            value()
    return loaded


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


if __name__ == "__main__":
    raise SystemExit(main())
