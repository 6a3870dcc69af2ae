"""A DAG proxied to a Dagster that observes this Airflow over REST only (no events), as ``migration_rest``.

The Dagster side (``AIRSTREAM_REST_INSTANCE_NAME`` in ``devstack/proxy_definitions.py``) names
this Airflow ``migration_rest`` while the listener names it otherwise, so the proxy says which
name the proxy jobs carry (``airflow_instance_name``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.10+
    from airflow import DAG
    from airflow.decorators import task

from airstream.airflow_listener.proxying import (
    BaseProxyTaskToDagsterOperator,
    load_proxied_state_from_yaml,
    proxying_to_dagster,
)

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
PROXIED_STATE = Path(__file__).parent / "proxied_state"
REST_INSTANCE_NAME = "migration_rest"


class RestObservedProxyOperator(BaseProxyTaskToDagsterOperator):
    """Launches the proxy job of the REST-observed instance's definitions."""

    airflow_instance_name = REST_INSTANCE_NAME


with DAG(dag_id="proxy_rest", schedule=None, start_date=START, catchup=False, tags=["airstream-migration"]):

    @task
    def prepare() -> None:
        print("preparing in Airflow")

    @task
    def load() -> None:
        print("loading in Airflow")

    prepare() >> load()


proxying_to_dagster(
    global_vars=globals(),
    proxied_state=load_proxied_state_from_yaml(PROXIED_STATE),
    build_from_task_fn=RestObservedProxyOperator,
)
