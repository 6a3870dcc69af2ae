"""Migration on the Airflow side: run chosen Airflow tasks, or whole DAGs, in Dagster.

At the end of a DAG file::

    from pathlib import Path
    from airstream.airflow_listener.proxying import load_proxied_state_from_yaml, proxying_to_dagster

    proxying_to_dagster(
        global_vars=globals(),
        proxied_state=load_proxied_state_from_yaml(Path(__file__).parent / "proxied_state"),
    )

Each ``proxied_state/<dag_id>.yaml`` says which tasks run in Dagster (``tasks: [{id: load,
proxied: true}]``) or that the whole DAG does (``proxied: true``); flipping ``true`` back to
``false`` rolls back. Nothing here imports Dagster: the proxies speak to the Dagster webserver's
GraphQL API over HTTP.
"""

from airstream.airflow_listener.proxying.dag_rewrite import proxying_to_dagster
from airstream.airflow_listener.proxying.dagster_client import (
    DagsterGraphQLClient,
    DagsterProxyError,
    DagsterUnreachable,
    ProxyJob,
    RunStatus,
)
from airstream.airflow_listener.proxying.operators import (
    BaseDagsterProxyOperator,
    BaseProxyDAGToDagsterOperator,
    BaseProxyTaskToDagsterOperator,
    DefaultProxyDAGToDagsterOperator,
    DefaultProxyTaskToDagsterOperator,
)
from airstream.airflow_listener.proxying.proxied_state import (
    DagProxiedState,
    ProxiedState,
    ProxiedStateError,
    load_proxied_state_from_yaml,
)
from airstream.schemas.proxying import (
    DAG_PROXY_TASK_ID,
    PROXIED_DAG_OPERATOR,
    PROXIED_TASK_OPERATOR,
    proxy_job_name,
)

__all__ = [
    "DAG_PROXY_TASK_ID",
    "PROXIED_DAG_OPERATOR",
    "PROXIED_TASK_OPERATOR",
    "BaseDagsterProxyOperator",
    "BaseProxyDAGToDagsterOperator",
    "BaseProxyTaskToDagsterOperator",
    "DagProxiedState",
    "DagsterGraphQLClient",
    "DagsterProxyError",
    "DagsterUnreachable",
    "DefaultProxyDAGToDagsterOperator",
    "DefaultProxyTaskToDagsterOperator",
    "ProxiedState",
    "ProxiedStateError",
    "ProxyJob",
    "RunStatus",
    "load_proxied_state_from_yaml",
    "proxy_job_name",
    "proxying_to_dagster",
]
