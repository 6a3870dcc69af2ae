"""Imports that differ between Airflow 2.10+ and Airflow 3, so these DAGs run on both."""

from __future__ import annotations

from datetime import datetime, timezone

try:  # Airflow 3
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.providers.standard.operators.python import BranchPythonOperator, ShortCircuitOperator
    from airflow.sdk import DAG, Asset, task, task_group
except ImportError:  # Airflow 2.10+
    from airflow import DAG
    from airflow.datasets import Dataset as Asset
    from airflow.decorators import task, task_group
    from airflow.operators.empty import EmptyOperator
    from airflow.operators.python import BranchPythonOperator, ShortCircuitOperator

# Asset-scheduled DAGs need a start date on Airflow 2; a fixed one keeps runs reproducible.
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
TAGS = ["airstream-observation"]

__all__ = [
    "DAG",
    "START",
    "TAGS",
    "Asset",
    "BranchPythonOperator",
    "EmptyOperator",
    "ShortCircuitOperator",
    "task",
    "task_group",
]
