"""A DAG whose proxy speaks to a Dagster behind an API-key gateway: a custom proxy operator.

The gateway's URL and key come from Airflow Variables (in the tests, AIRFLOW_VAR_DAGSTER_GATEWAY_URL
and AIRFLOW_VAR_DAGSTER_API_KEY).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests

try:  # Airflow 3
    from airflow.sdk import DAG, Variable, task
except ImportError:  # Airflow 2.10+
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models import Variable

from airstream.airflow_listener.proxying import (
    BaseProxyTaskToDagsterOperator,
    load_proxied_state_from_yaml,
    proxying_to_dagster,
)

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
PROXIED_STATE = Path(__file__).parent / "proxied_state"


class ApiKeyProxyOperator(BaseProxyTaskToDagsterOperator):
    """Sends the API key the gateway in front of Dagster asks for."""

    def get_dagster_session(self, context: Any) -> requests.Session:
        session = requests.Session()
        session.headers["X-Api-Key"] = Variable.get("dagster_api_key")
        return session

    def get_dagster_url(self, context: Any) -> str:
        return str(Variable.get("dagster_gateway_url"))


with DAG(dag_id="proxy_custom", schedule=None, start_date=START, catchup=False, tags=["airstream-migration"]):

    @task
    def secured() -> None:
        print("secured work in Airflow")

    secured()


proxying_to_dagster(
    global_vars=globals(),
    proxied_state=load_proxied_state_from_yaml(PROXIED_STATE),
    build_from_task_fn=ApiKeyProxyOperator,
)
