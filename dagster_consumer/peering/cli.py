"""``airstream peering refresh``: fetch the DAG list and Airflow assets again and store them.

Loads your definitions in-process (as the code location would), finds the Airflow instances
they peer with, fetches each one's snapshot from Airflow and stores it in the Dagster instance
of ``DAGSTER_HOME``, the one your code location uses. The next load of the code location (a
reload in the UI, a restart) shows the new DAGs::

    airstream peering refresh -m my_project.definitions
    airstream peering refresh -f definitions.py --instance prod
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from dagster import DagsterInstance

from airstream.dagster_consumer import cli
from airstream.dagster_consumer.peering import loader


def main(argv: Sequence[str] | None = None) -> int:
    """The ``airstream`` command (see :mod:`airstream.dagster_consumer.cli`); returns the exit status."""
    return cli.main(argv)


def refresh_command(*, module: str | None, file: str | None, instance_names: Sequence[str] | None) -> int:
    """Load the definitions, then refresh the peering snapshot of each (selected) Airflow instance."""
    try:
        dagster_instance = DagsterInstance.get()
    except Exception as error:
        print(f"airstream: no Dagster instance ({error}); set DAGSTER_HOME to your deployment's", file=sys.stderr)
        return 2
    with dagster_instance, loader.first_fetch_suppressed():
        cli.load_user_definitions(module, file)
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


if __name__ == "__main__":
    raise SystemExit(main())
