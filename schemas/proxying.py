"""What both sides agree on about proxying (migration): the markers and the Dagster job names.

A proxied Airflow task runs a proxy operator whose ``task_type`` and ``custom_operator_name`` are
:data:`PROXIED_TASK_OPERATOR` (task level) or :data:`PROXIED_DAG_OPERATOR` (DAG level). Airflow
stores the task type in the task-instance row (column ``operator``) on 2.x and 3.x, and both REST
dialects return it (REST v1 on Airflow 2 returns no ``custom_operator_name``, which is why the task
type carries the marker too). The listener's events and the REST source both copy it into the
event's ``operator`` field, so the Dagster side learns what is proxied from Airflow alone.

A DAG proxied as a whole holds one task, :data:`DAG_PROXY_TASK_ID`; a DAG run whose task ids are
exactly that one is a run Dagster executed.

The Dagster side defines one asset job per mapped task and per mapped DAG, named by
:func:`proxy_job_name` after the Airflow instance (``AirflowInstance(name=...)`` on the Dagster
side, ``[airstream] instance_name`` on the Airflow side), the DAG and the task; the proxy operator
launches that job, so it never lists every asset of the deployment to find a task's assets, and
two Airflow instances with the same DAG and task ids (federation) get distinct jobs.
"""

from __future__ import annotations

import hashlib
import re

PROXIED_TASK_OPERATOR = "ProxyTaskToDagster"
PROXIED_DAG_OPERATOR = "ProxyDAGToDagster"
PROXY_OPERATORS = frozenset({PROXIED_TASK_OPERATOR, PROXIED_DAG_OPERATOR})
DAG_PROXY_TASK_ID = "run_dag_in_dagster"

_JOB_PREFIX = "airstream_proxy__"
_NOT_IN_JOB_NAME = re.compile(r"[^A-Za-z0-9_]")


def proxy_job_name(instance_name: str, dag_id: str, task_id: str | None = None) -> str:
    """The Dagster job that materializes the assets mapped to an Airflow task (or, without
    ``task_id``, to a whole DAG) of the Airflow instance ``instance_name``.

    Ids with characters a job name cannot hold, or with ``__`` (the separator), get a short hash
    of the three ids, so two different (instance, DAG, task) never share a name.

    Example::

        proxy_job_name("prod", "etl", "load")          # "airstream_proxy__prod__etl__load"
        proxy_job_name("prod", "etl")                  # "airstream_proxy__prod__etl"
        proxy_job_name("prod", "etl", "group.load")    # "airstream_proxy__prod__etl__group_load__<8 hex digits>"
    """
    parts = [instance_name, dag_id] if task_id is None else [instance_name, dag_id, task_id]
    cleaned = [_NOT_IN_JOB_NAME.sub("_", part) for part in parts]
    name = _JOB_PREFIX + "__".join(cleaned)
    if cleaned != parts or any("__" in part for part in parts):
        digest = hashlib.sha1("\x1f".join(parts).encode()).hexdigest()[:8]
        name += f"__{digest}"
    return name


def is_proxy_operator(operator: str | None) -> bool:
    """True for the operator name (task type) of a proxy task, task level or DAG level."""
    return operator in PROXY_OPERATORS
