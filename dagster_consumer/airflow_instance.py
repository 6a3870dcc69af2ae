"""The Airflow instance a Dagster deployment observes."""

from __future__ import annotations

from dataclasses import dataclass

from airstream.dagster_consumer.sources.base import EventSource
from airstream.schemas import validate_instance_name


@dataclass(frozen=True)
class AirflowInstance:
    """One Airflow deployment, named as its listener names it (``[airstream] instance_name``).

    Args:
        name: the instance name carried by every event; also the first part of the DAG
            asset keys (``[name, "dag", dag_id]``). 1 to 64 letters, digits and underscores, the
            same rule as the listener's (``airstream.schemas.validate_instance_name``).
        event_source: where its events come from, e.g. :class:`KafkaEventSource`.
        webserver_url: the Airflow UI's base URL; when given, every materialization links
            to the task or DAG run in Airflow.

    Example::

        AirflowInstance(
            name="prod",
            event_source=KafkaEventSource(bootstrap_servers="broker:9092", topic="airflow.events"),
            webserver_url="https://airflow.example.com",
        )
    """

    name: str
    event_source: EventSource
    webserver_url: str | None = None

    def __post_init__(self) -> None:
        validate_instance_name(self.name)  # the listener's rule: raises InvalidInstanceName (a ValueError)
        if not isinstance(self.event_source, EventSource):
            raise TypeError(
                f"AirflowInstance event_source must be an EventSource such as KafkaEventSource, "
                f"got {type(self.event_source).__name__}"
            )
        if self.webserver_url is not None:
            object.__setattr__(self, "webserver_url", self.webserver_url.rstrip("/"))
