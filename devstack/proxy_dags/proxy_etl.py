"""A DAG migrating task by task: `load`, `daily_report` and `flaky` can run in Dagster (see proxied_state/)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

try:  # Airflow 3
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.10+
    from airflow import DAG
    from airflow.decorators import task


from airstream.airflow_listener.proxying import load_proxied_state_from_yaml, proxying_to_dagster

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
PROXIED_STATE = Path(__file__).parent / "proxied_state"


def alert(context: object) -> None:
    """What the team's alerting does when `load` fails, wherever it runs."""
    print("load failed")


with DAG(dag_id="proxy_etl", schedule=None, start_date=START, catchup=False, tags=["airstream-migration"]):

    @task
    def extract() -> None:
        print("extracting in Airflow")

    @task(retries=2, retry_delay=timedelta(seconds=1), on_failure_callback=alert)
    def load() -> None:
        print("loading in Airflow")

    @task
    def daily_report() -> None:
        print("reporting in Airflow")

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def flaky() -> None:
        print("flaky work in Airflow")

    extracted = extract()
    extracted >> [load(), daily_report(), flaky()]


proxying_to_dagster(global_vars=globals(), proxied_state=load_proxied_state_from_yaml(PROXIED_STATE))
