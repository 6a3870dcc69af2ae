"""A DAG whose proxied task runs a slow Dagster asset, to check that killing the task terminates the run."""

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


with DAG(dag_id="proxy_kill", schedule=None, start_date=START, catchup=False, tags=["airstream-migration"]):

    @task
    def slow() -> None:
        print("slow work in Airflow")

    slow()


proxying_to_dagster(global_vars=globals(), proxied_state=load_proxied_state_from_yaml(PROXIED_STATE))
