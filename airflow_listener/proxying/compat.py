"""The Airflow names that moved between Airflow 2.10+ and Airflow 3, imported in one place."""

from __future__ import annotations

from typing import Any

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


__all__ = ["BaseOperator", "Variable", "get_variable"]
