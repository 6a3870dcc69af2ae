"""Local stack for the demo and the tests: an embedded Kafka broker, Airflow and Dagster processes."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository's root: devstack runs from a checkout, never from an installed wheel."""
