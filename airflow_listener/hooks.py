"""The listener hooks Airflow calls. Each one builds an event and hands it to the publisher.

Hooks never raise: an exception here would stop the other listeners' hooks for the same
event, so every error is caught and logged. They never wait for the network in the scheduler
or the api-server (see :mod:`airstream.airflow_listener.delivery`).

Arguments are declared without ``session``, which keeps one implementation valid on
Airflow 3 and Airflow 2.10+.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import pluggy

from airstream.airflow_listener.config import ListenerConfig, ListenerConfigError
from airstream.airflow_listener.delivery import Publisher
from airstream.airflow_listener.event_builder import (
    asset_updated_events,
    dag_run_event,
    runs_in_long_lived_process,
    task_instance_event,
)
from airstream.airflow_listener.finished_run import read_finished_run

log = logging.getLogger(__name__)

hookimpl = pluggy.HookimplMarker("airflow")

_publisher: Publisher | None = None
_disabled = False

F = TypeVar("F", bound=Callable[..., None])


def get_publisher() -> Publisher | None:
    """The process's publisher, built on first use from ``[airstream]``; None when disabled.

    With an invalid configuration the publisher only spools: events wait on local disk and go
    out once a process with a valid configuration drains the spool (or ``airstream-spool flush``).
    """
    global _publisher, _disabled
    if _publisher is None and not _disabled:
        if ListenerConfig.disabled_in_airflow():
            _disabled = True  # switched off: nothing is spooled, even if another option is invalid
            return None
        try:
            config = ListenerConfig.from_airflow()
        except ListenerConfigError as error:
            config = ListenerConfig.fallback_from_airflow()
            log.error(
                "airstream: %s. Events are kept in %s until the configuration is fixed; they are sent "
                "automatically after that, or by `airstream-spool flush`.",
                error,
                config.spool_dir,
            )
            _publisher = Publisher(config, spool_only=True)
            return _publisher
        _publisher = Publisher(config)
    return _publisher


def _never_raise(hook: F) -> F:
    @functools.wraps(hook)
    def guarded(*args: Any, **kwargs: Any) -> None:
        try:
            hook(*args, **kwargs)
        except Exception:
            log.exception("airstream: %s failed; Airflow is unaffected, this event was not recorded", hook.__name__)

    return guarded  # type: ignore[return-value]


def _publish_task_event(hook_state: str, task_instance: Any) -> None:
    publisher = get_publisher()
    if publisher is None:
        return
    instance = publisher.config.instance_name
    event = task_instance_event(instance, hook_state, task_instance)
    inline = not runs_in_long_lived_process(task_instance)
    if event.state != "success":
        publisher.publish(event, inline=inline)
        return
    publisher.publish_many([event, *asset_updated_events(instance, task_instance)], inline=inline)


def _publish_dag_run_event(hook_state: str, dag_run: Any) -> None:
    publisher = get_publisher()
    if publisher is None:
        return
    instance = publisher.config.instance_name
    inline = not runs_in_long_lived_process()
    if hook_state == "running":
        publisher.publish(dag_run_event(instance, hook_state, dag_run), inline=inline)
        return
    # A finished run: first what its task instances reached that no hook may have reported.
    finished = read_finished_run(instance, dag_run)
    publisher.publish_many(finished.events, inline=inline)
    publisher.publish(dag_run_event(instance, hook_state, dag_run, task_ids=finished.task_ids), inline=inline)


@hookimpl
@_never_raise
def on_task_instance_running(previous_state: Any, task_instance: Any) -> None:
    _publish_task_event("running", task_instance)


@hookimpl
@_never_raise
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    _publish_task_event("success", task_instance)


@hookimpl
@_never_raise
def on_task_instance_failed(previous_state: Any, task_instance: Any, error: Any) -> None:
    _publish_task_event("failed", task_instance)


@hookimpl
@_never_raise
def on_task_instance_skipped(previous_state: Any, task_instance: Any) -> None:
    _publish_task_event("skipped", task_instance)


@hookimpl
@_never_raise
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    _publish_dag_run_event("running", dag_run)


@hookimpl
@_never_raise
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _publish_dag_run_event("success", dag_run)


@hookimpl
@_never_raise
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _publish_dag_run_event("failed", dag_run)
