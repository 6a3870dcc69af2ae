"""The Airflow plugin, registered through the ``airflow.plugins`` entry point."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airstream.airflow_listener import hooks


class AirstreamPlugin(AirflowPlugin):
    """Publishes every DAG-run and task-instance lifecycle event to Kafka."""

    name = "airstream"
    listeners = [hooks]  # noqa: RUF012  (AirflowPlugin declares it as a class attribute)
