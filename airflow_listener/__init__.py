"""The Airflow side of airstream: a listener plugin that publishes lifecycle events to Kafka.

Installing ``airstream[airflow]`` into an Airflow environment registers the plugin through the
``airflow.plugins`` entry point; configure it in the ``[airstream]`` section of airflow.cfg or
with ``AIRFLOW__AIRSTREAM__*`` environment variables (see :mod:`airflow_listener.config`).

This package never imports Dagster.
"""

__version__ = "0.1.0"
