"""A DAG whose proxy speaks to a Dagster behind an API-key gateway: a custom proxy operator.

The gateway's URL and key come from Airflow Variables (in the tests, AIRFLOW_VAR_DAGSTER_GATEWAY_URL
and AIRFLOW_VAR_DAGSTER_API_KEY).
"""

from __future__ import annotations

from typing import Any

import requests
from _proxy_compat import DAG, PROXIED_STATE, START, Variable, task

from airstream.airflow_listener.proxying import (
    BaseProxyTaskToDagsterOperator,
    load_proxied_state_from_yaml,
    proxying_to_dagster,
)


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
