"""A DAG whose proxied task asks Dagster to retry its run: Dagster's run retries, not Airflow's.

The custom proxy adds the run tag ``dagster/max_retries``, so a Dagster instance with run retries
enabled (``run_retries: {enabled: true}`` in ``dagster.yaml``) launches a retry when the run fails,
and the proxy follows it: the Airflow task succeeds in one try (it has no Airflow retries).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

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


class RetriedInDagsterOperator(BaseProxyTaskToDagsterOperator):
    """Lets Dagster retry a failed run once before the Airflow task fails."""

    def run_tags(self, context: Any) -> dict[str, str]:
        return {**super().run_tags(context), "dagster/max_retries": "1"}


with DAG(dag_id="proxy_retry", schedule=None, start_date=START, catchup=False, tags=["airstream-migration"]):

    @task(retries=0)
    def retried() -> None:
        print("work in Airflow")

    retried()


proxying_to_dagster(
    global_vars=globals(),
    proxied_state=load_proxied_state_from_yaml(PROXIED_STATE),
    build_from_task_fn=RetriedInDagsterOperator,
)
