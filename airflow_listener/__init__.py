"""The Airflow side of airstream: a listener plugin that publishes lifecycle events to Kafka.

Installing ``airstream[airflow]`` into an Airflow environment registers the plugin through the
``airflow.plugins`` entry point; configure it in the ``[airstream]`` section of airflow.cfg or
with ``AIRFLOW__AIRSTREAM__*`` environment variables (see :mod:`airstream.airflow_listener.config`).

This package never imports Dagster.
"""

from airstream import __version__

__all__ = ["__version__"]
