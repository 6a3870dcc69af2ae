"""The Airflow names that moved between Airflow 2.10+ and Airflow 3, imported in one place."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from airstream.airflow_listener.config import SECTION, ListenerConfig
from airstream.schemas import InvalidInstanceName, validate_instance_name

try:  # Airflow 3: the Task SDK
    from airflow.sdk import BaseOperator, Variable
except ImportError:  # Airflow 2.10+
    from airflow.models import BaseOperator, Variable


def get_variable(name: str) -> str | None:
    """An Airflow Variable's value, or ``None`` when it is not set (``AIRFLOW_VAR_<NAME>`` counts)."""
    try:
        value: Any = Variable.get(name, None)  # the default is the second argument on 2.x and 3.x
    except Exception:  # no metadata database or execution API reachable
        return None
    return None if value is None else str(value)


def airstream_instance_name() -> str:
    """The name this Airflow has in airstream: ``[airstream] instance_name`` (or
    ``AIRFLOW__AIRSTREAM__INSTANCE_NAME``), the listener's default (``airflow``) when unset.

    Dagster names its proxy jobs after it (``AirflowInstance(name=...)`` must be the same), so an
    invalid name is a ``ValueError`` that names the option, raised while the DAG file imports.
    """
    try:
        from airflow.configuration import conf

        raw = conf.get(SECTION, "instance_name", fallback=None)
    except ImportError:  # no Airflow configuration to read (a plain script)
        raw = None
    name = str(raw or "").strip() or ListenerConfig.instance_name
    try:
        return validate_instance_name(name)
    except InvalidInstanceName as error:
        raise ValueError(f"[{SECTION}] instance_name: {error}") from None


def dags_registered_by(global_vars: Mapping[str, Any]) -> list[Any]:
    """The DAGs a ``with DAG(...):`` block of the module owning ``global_vars`` registered, even
    when no variable holds them (Airflow keeps them in ``DagContext.autoregistered_dags``)."""
    for module_name in ("airflow.sdk.definitions._internal.contextmanager", "airflow.models.dag"):
        try:
            context = importlib.import_module(module_name).DagContext
        except (ImportError, AttributeError):
            continue
        registered: set[tuple[Any, Any]] = getattr(context, "autoregistered_dags", set())
        return [dag for dag, module in list(registered) if getattr(module, "__dict__", None) is global_vars]
    return []


__all__ = ["BaseOperator", "Variable", "airstream_instance_name", "dags_registered_by", "get_variable"]
