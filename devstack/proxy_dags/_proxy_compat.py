"""Imports that differ between Airflow 2.10+ and Airflow 3, so the migration DAGs run on both."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

try:  # Airflow 3
    from airflow.sdk import DAG, Variable, task
except ImportError:  # Airflow 2.10+
    from airflow import DAG
    from airflow.decorators import task
    from airflow.models import Variable

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
PROXIED_STATE = Path(__file__).parent / "proxied_state"

__all__ = ["DAG", "PROXIED_STATE", "START", "Variable", "task"]
