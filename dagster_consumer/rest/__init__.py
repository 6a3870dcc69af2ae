"""Airflow's REST API from the Dagster side: one client for Airflow 3 (REST API v2, JWT) and Airflow 2.10+
(REST API v1, basic auth), its auth backends, the records it returns and its errors.

Example::

    from airstream.dagster_consumer.rest import AirflowRestClient, TokenAuthBackend

    client = AirflowRestClient(TokenAuthBackend("http://localhost:8080", username="admin", password="admin"))
    for dag in client.list_dags():
        print(dag.dag_id, dag.schedule)
    run_id = client.trigger_dag("etl", conf={"full_refresh": True})
    print(client.wait_for_run_completion("etl", run_id, timeout=600, poll_interval=5))

Most code reaches the client through ``AirflowInstance(..., auth_backend=...).rest``.
"""

from airstream.dagster_consumer.rest.auth import (
    AirflowAuthBackend,
    BasicAuthBackend,
    BearerTokenAuthBackend,
    TokenAuthBackend,
)
from airstream.dagster_consumer.rest.client import FINISHED_RUN_STATES, PAGE_LIMIT, AirflowRestClient
from airstream.dagster_consumer.rest.errors import (
    AirflowApiError,
    AirflowApiVersionError,
    AirflowAuthenticationError,
    AirflowRestError,
    AirflowRunTimeout,
    AirflowUnreachable,
)
from airstream.dagster_consumer.rest.records import (
    AirflowAssetRecord,
    AirflowRestApi,
    DagRecord,
    DagRunRecord,
    ServerInfo,
    TaskInstanceRecord,
    TaskRecord,
)

__all__ = [
    "FINISHED_RUN_STATES",
    "PAGE_LIMIT",
    "AirflowApiError",
    "AirflowApiVersionError",
    "AirflowAssetRecord",
    "AirflowAuthBackend",
    "AirflowAuthenticationError",
    "AirflowRestApi",
    "AirflowRestClient",
    "AirflowRestError",
    "AirflowRunTimeout",
    "AirflowUnreachable",
    "BasicAuthBackend",
    "BearerTokenAuthBackend",
    "DagRecord",
    "DagRunRecord",
    "ServerInfo",
    "TaskInstanceRecord",
    "TaskRecord",
    "TokenAuthBackend",
]
