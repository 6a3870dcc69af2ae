"""A DAG proxied as a whole: with `proxied: true` its two tasks become one that runs the DAG's assets in Dagster."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.10+
    from airflow import DAG
    from airflow.decorators import task


from airstream.airflow_listener.proxying import load_proxied_state_from_yaml, proxying_to_dagster

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
PROXIED_STATE = Path(__file__).parent / "proxied_state"


with DAG(dag_id="proxy_whole", schedule=None, start_date=START, catchup=False, tags=["airstream-migration"]):

    @task
    def build() -> None:
        print("building in Airflow")

    @task
    def publish() -> None:
        print("publishing in Airflow")

    build() >> publish()


proxying_to_dagster(global_vars=globals(), proxied_state=load_proxied_state_from_yaml(PROXIED_STATE))
