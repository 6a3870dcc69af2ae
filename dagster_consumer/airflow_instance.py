"""The Airflow instance a Dagster deployment observes, and drives through its REST API."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from airstream.dagster_consumer.rest.auth import AirflowAuthBackend, normalize_webserver_url
from airstream.dagster_consumer.rest.client import AirflowRestClient
from airstream.dagster_consumer.sources.base import EventSource
from airstream.schemas import validate_instance_name

_REST_LOCK = threading.Lock()  # builds each instance's client once, whatever the threads


@dataclass(frozen=True)
class AirflowInstance:
    """One Airflow deployment, named as its listener names it (``[airstream] instance_name``).

    It is observed through its events (``event_source``, the event path), through its REST API
    (``auth_backend``, the REST path: peering, fallback polling, gap repair, triggering runs), or both.

    Args:
        name: the instance name carried by every event; also the first part of the DAG
            asset keys (``[name, "dag", dag_id]``). 1 to 64 letters, digits and underscores, the
            same rule as the listener's (``airstream.schemas.validate_instance_name``).
        event_source: where its events come from, e.g. :class:`KafkaEventSource`. Optional when
            ``auth_backend`` is given.
        webserver_url: the Airflow UI's base URL; every materialization links to the task or DAG
            run there. Defaults to ``auth_backend``'s URL.
        auth_backend: how to reach its REST API: :class:`TokenAuthBackend` (Airflow 3),
            :class:`BasicAuthBackend` (Airflow 2), :class:`BearerTokenAuthBackend`, or your own
            :class:`AirflowAuthBackend`. Optional when ``event_source`` is given.

    Example::

        AirflowInstance(
            name="prod",
            event_source=KafkaEventSource(bootstrap_servers="broker:9092", topic="airflow.events"),
            auth_backend=TokenAuthBackend("https://airflow.example.com", "dagster", os.environ["AIRFLOW_PASSWORD"]),
        )

        run_id = prod.trigger_dag("etl", conf={"full_refresh": True})
        prod.wait_for_run_completion("etl", run_id, timeout=1800, poll_interval=10)  # "success" or "failed"

    The dataclass is frozen and hashes by identity of its source and backend; the REST client is
    built on first use of :attr:`rest` and reused.
    """

    name: str
    event_source: EventSource | None = None
    webserver_url: str | None = None
    auth_backend: AirflowAuthBackend | None = None

    def __post_init__(self) -> None:
        validate_instance_name(self.name)  # the listener's rule: raises InvalidInstanceName (a ValueError)
        if self.event_source is None and self.auth_backend is None:
            raise ValueError(
                f"AirflowInstance {self.name!r} needs event_source (e.g. KafkaEventSource: the event path), "
                "auth_backend (e.g. TokenAuthBackend for Airflow 3, BasicAuthBackend for Airflow 2: the REST "
                "path), or both"
            )
        if self.event_source is not None and not isinstance(self.event_source, EventSource):
            raise TypeError(
                f"AirflowInstance event_source must be an EventSource such as KafkaEventSource, "
                f"got {type(self.event_source).__name__}"
            )
        if self.auth_backend is not None and not isinstance(self.auth_backend, AirflowAuthBackend):
            raise TypeError(
                f"AirflowInstance auth_backend must be an AirflowAuthBackend such as TokenAuthBackend or "
                f"BasicAuthBackend, got {type(self.auth_backend).__name__}"
            )
        url = self.webserver_url
        if url is None and self.auth_backend is not None:
            url = self.auth_backend.get_webserver_url()
        if url is not None:
            object.__setattr__(self, "webserver_url", normalize_webserver_url(url))

    @property
    def rest(self) -> AirflowRestClient | None:
        """The REST client of this instance (one per instance, built on first use, then reused),
        or ``None`` without ``auth_backend``."""
        if self.auth_backend is None:
            return None
        client: AirflowRestClient | None = self.__dict__.get("_rest_client")
        if client is None:
            with _REST_LOCK:
                client = self.__dict__.get("_rest_client")
                if client is None:
                    client = AirflowRestClient(self.auth_backend)
                    self.__dict__["_rest_client"] = client  # a cache, not a field: equality and hash ignore it
        return client

    def require_rest(self) -> AirflowRestClient:
        """:attr:`rest`, or a ``ValueError`` saying to configure ``auth_backend``."""
        client = self.rest
        if client is None:
            raise ValueError(
                f"AirflowInstance {self.name!r} has no REST access: give it auth_backend=TokenAuthBackend(...) "
                "(Airflow 3) or BasicAuthBackend(...) (Airflow 2)"
            )
        return client

    def trigger_dag(
        self, dag_id: str, conf: dict[str, object] | None = None, logical_date: datetime | None = None
    ) -> str:
        """Start a run of ``dag_id`` and return its run id; it does not wait (see :meth:`wait_for_run_completion`).

        ``logical_date`` (a naive datetime is taken as UTC): ``None`` gives a run without a logical
        date on Airflow 3, and now on Airflow 2.
        """
        return self.require_rest().trigger_dag(dag_id, conf=conf, logical_date=logical_date)

    def get_run_state(self, dag_id: str, run_id: str) -> str:
        """The run's state: ``queued``, ``running``, ``success`` or ``failed``."""
        return self.require_rest().get_run_state(dag_id, run_id)

    def wait_for_run_completion(
        self, dag_id: str, run_id: str, timeout: float = 3600.0, poll_interval: float = 5.0
    ) -> str:
        """Wait until the run is finished and return its state (``success`` or ``failed``), asking every
        ``poll_interval`` seconds; raises :class:`AirflowRunTimeout` after ``timeout`` seconds."""
        return self.require_rest().wait_for_run_completion(dag_id, run_id, timeout=timeout, poll_interval=poll_interval)
