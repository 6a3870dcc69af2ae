"""``proxying_to_dagster``: swap proxied tasks (or whole DAGs) for proxy operators at import time.

Called at the end of a DAG file, it rewrites the DAGs that file defined, following the
proxied-state files (see :mod:`airstream.airflow_listener.proxying.proxied_state`). The rewrite
changes only what runs: the DAG's id, schedule, other tasks, dependencies and history stay, so
rolling back (``proxied: false``) gives the original DAG back on the next parse.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

from airstream.airflow_listener.proxying.compat import BaseOperator, dags_registered_by
from airstream.airflow_listener.proxying.operators import (
    BaseProxyDAGToDagsterOperator,
    BaseProxyTaskToDagsterOperator,
    DefaultProxyDAGToDagsterOperator,
    DefaultProxyTaskToDagsterOperator,
)
from airstream.airflow_listener.proxying.proxied_state import DagProxiedState, ProxiedState, ProxiedStateError

log = logging.getLogger(__name__)

# Set by `airstream proxy scaffold` while it parses DAGs: it lists the tasks of the DAGs as written.
SCAFFOLDING_ENV = "AIRSTREAM_PROXY_SCAFFOLDING"

BuildFromTask = Callable[[Any], BaseOperator]
BuildFromDag = Callable[[Any], BaseOperator]


def proxying_to_dagster(
    *,
    global_vars: Mapping[str, Any],
    proxied_state: ProxiedState,
    logger: logging.Logger | None = None,
    build_from_task_fn: BuildFromTask | type[BaseProxyTaskToDagsterOperator] | None = None,
    build_from_dag_fn: BuildFromDag | type[BaseProxyDAGToDagsterOperator] | None = None,
) -> None:
    """Replace the proxied tasks of the DAGs in ``global_vars`` (a DAG file's ``globals()``).

    ``build_from_task_fn`` / ``build_from_dag_fn`` build the proxies: a function from the
    original task (or DAG) to an operator, or a proxy operator class (its ``build_from_task`` /
    ``build_from_dag`` is used). Raises :class:`ProxiedStateError` when a file names a task the
    DAG does not have, or asks to proxy a dynamically mapped task.

    Example (at the end of a DAG file)::

        proxying_to_dagster(
            global_vars=globals(),
            proxied_state=load_proxied_state_from_yaml(Path(__file__).parent / "proxied_state"),
            build_from_task_fn=ApiKeyProxy,   # or ApiKeyProxy.build_from_task
        )
    """
    logger = logger or log
    if os.environ.get(SCAFFOLDING_ENV):
        return
    build_task = _builder(
        build_from_task_fn,
        BaseProxyTaskToDagsterOperator,
        DefaultProxyTaskToDagsterOperator,
        "build_from_task",
        "build_from_task_fn",
    )
    build_dag = _builder(
        build_from_dag_fn,
        BaseProxyDAGToDagsterOperator,
        DefaultProxyDAGToDagsterOperator,
        "build_from_dag",
        "build_from_dag_fn",
    )
    for dag in _dags_in(global_vars):
        state = proxied_state.for_dag(dag.dag_id)
        if state is None:
            continue
        if state.is_dag_level:
            if state.proxied:
                _proxy_whole_dag(dag, build_dag)
                logger.debug("airstream: DAG %s runs in Dagster as one task", dag.dag_id)
            continue
        state.check_tasks_exist(set(dag.task_dict))
        for task_id in state.proxied_task_ids():
            _proxy_task(dag, dag.task_dict[task_id], state, build_task)
            logger.debug("airstream: task %s.%s runs in Dagster", dag.dag_id, task_id)


def _dags_in(global_vars: Mapping[str, Any]) -> list[Any]:
    """The DAGs of the DAG file: held by a variable, or registered by a ``with DAG(...):`` block."""
    seen: dict[int, Any] = {}
    for value in [*global_vars.values(), *dags_registered_by(global_vars)]:
        if hasattr(value, "dag_id") and hasattr(value, "task_dict") and hasattr(value, "task_group"):
            seen.setdefault(id(value), value)
    return sorted(seen.values(), key=lambda dag: dag.dag_id)


def _builder(given: Any, base: type, default: type, method: str, argument: str) -> Callable[[Any], BaseOperator]:
    """The function from a task (or DAG) to its proxy: ``given`` itself, or the ``method`` of the
    class given (default: ``default``), which must subclass ``base``."""
    given = default if given is None else given
    if not isinstance(given, type):
        return given
    if not issubclass(given, base):
        raise TypeError(f"{argument}: {given.__name__} is not a subclass of {base.__name__}")
    return getattr(given, method)


def _proxy_task(dag: Any, original: Any, state: DagProxiedState, build: BuildFromTask) -> None:
    task_id = original.task_id
    if not isinstance(original, BaseOperator):  # a MappedOperator (.expand) or another kind of node
        raise ProxiedStateError(
            state.path,
            state.lines.get(task_id),
            f"task {task_id!r} is dynamically mapped ({type(original).__name__}); proxy the whole DAG instead, "
            f"or map its assets to a task that is not mapped",
        )
    proxy = build(original)
    if proxy.task_id != task_id:
        raise ValueError(f"the proxy built for {dag.dag_id}.{task_id} has task id {proxy.task_id!r}: keep the id")
    # Put the proxy where the original was: the DAG's task dict, its task group, its neighbours.
    dag.task_dict[task_id] = proxy
    group = getattr(original, "task_group", None)
    if group is not None:
        group.children[task_id] = proxy
        proxy.task_group = group
    proxy.upstream_task_ids.update(original.upstream_task_ids)
    proxy.downstream_task_ids.update(original.downstream_task_ids)
    proxy.start_date = original.start_date
    proxy.end_date = original.end_date
    proxy.dag = dag  # the DAG already lists the proxy under this id, so nothing is added twice


def _proxy_whole_dag(dag: Any, build: BuildFromDag) -> None:
    proxy = build(dag)
    for task_id in list(dag.task_dict):
        dag.task_dict.pop(task_id)
    root = dag.task_group
    root.children.clear()
    used = getattr(root, "used_group_ids", None)
    if isinstance(used, set):
        used.clear()
    if hasattr(dag, "task_count"):
        dag.task_count = 0
    proxy.dag = dag
