"""A real local Airflow behind a :class:`~devstack.counting_proxy.CountingProxy`, for the REST path's tests.

:func:`start_rest_airflow3` starts Airflow 3.3 (REST API v2, JWT) and :func:`start_rest_airflow2`
Airflow 2.11 (REST API v1, basic auth), each with the observation DAGs and the airstream listener
publishing to a topic of its own, and returns a :class:`RestAirflow`: what a test needs to point a
REST client at the proxy and count what it asked.

Example::

    with start_rest_airflow3(work_dir, bootstrap_servers="127.0.0.1:9092") as af:
        client = AirflowRestClient(af.auth_backend())
        with af.proxy.counting() as window:
            client.list_dags()
        assert window.count("GET", "/api/v2/dags") == 1
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from devstack.airflow import (
    OBSERVATION_DAGS,
    PASSWORD,
    USERNAME,
    AirflowApi,
    LocalAirflow,
    airflow_env,
    start_airflow,
)
from devstack.airflow2 import AirflowApiV1, LocalAirflow2, airflow2_env, ensure_airflow2_venv, start_airflow2
from devstack.broker import create_topic
from devstack.counting_proxy import CountingProxy

if TYPE_CHECKING:
    from airstream.dagster_consumer.rest.auth import AirflowAuthBackend

__all__ = ["OBSERVATION_DAG_IDS", "RestAirflow", "start_rest_airflow2", "start_rest_airflow3"]

OBSERVATION_DAG_IDS = ("observe_asset_consumer", "observe_asset_producer", "observe_branching", "observe_failures")
"""The DAGs of ``devstack/observation_dags`` (both Airflow versions parse the same files)."""


@dataclass(frozen=True)
class RestAirflow:
    """A running local Airflow reached through a counting proxy.

    Attributes:
        name: the airstream instance name its listener publishes under (``[airstream] instance_name``).
        major: 3 or 2.
        api_version: ``"v2"`` (Airflow 3) or ``"v1"`` (Airflow 2).
        airflow: the devstack handle (:class:`devstack.airflow.LocalAirflow` or
            :class:`devstack.airflow2.LocalAirflow2`): environment, processes, ``api()``.
        url: the proxy's base URL; point the client under test here so its requests are counted.
        upstream_url: Airflow's own base URL (requests there are not counted).
        username, password: credentials of the admin user (JWT on Airflow 3, basic auth on Airflow 2).
        proxy: the :class:`CountingProxy` (``counts``, ``counting()``, ``fail_next()``).
        topic: the Kafka topic its listener publishes to; bootstrap_servers: the broker.
        dag_ids: the observation DAGs it has parsed.
    """

    name: str
    major: int
    api_version: str
    airflow: LocalAirflow | LocalAirflow2
    url: str
    upstream_url: str
    username: str
    password: str
    proxy: CountingProxy
    topic: str
    bootstrap_servers: str
    dag_ids: tuple[str, ...] = OBSERVATION_DAG_IDS

    def admin_api(self) -> AirflowApi | AirflowApiV1:
        """devstack's own REST helper, straight to Airflow (not counted): trigger, wait, set states in setup."""
        return self.airflow.api()

    def auth_backend(self) -> AirflowAuthBackend:
        """The backend this version wants, pointed at the proxy: a JWT (Airflow 3) or basic auth (Airflow 2)."""
        from airstream.dagster_consumer.rest.auth import BasicAuthBackend, TokenAuthBackend

        if self.major >= 3:
            return TokenAuthBackend(self.url, self.username, self.password)
        return BasicAuthBackend(self.url, self.username, self.password)


@contextlib.contextmanager
def start_rest_airflow3(
    work_dir: Path, *, bootstrap_servers: str, name: str = "rest_af3", topic: str | None = None
) -> Iterator[RestAirflow]:
    """Airflow 3.3 (api-server, scheduler, dag-processor) with the observation DAGs, behind a counting proxy.

    Stops the proxy and every Airflow process when the block ends.
    """
    topic, home = _topic_and_home(work_dir, name, bootstrap_servers, topic)
    env = airflow_env(
        home, bootstrap_servers=bootstrap_servers, topic=topic, instance_name=name, dags_folder=OBSERVATION_DAGS
    )
    with (
        start_airflow(env, log_dir=home / "logs", expected_dags=len(OBSERVATION_DAG_IDS)) as airflow,
        _behind_proxy(airflow, name=name, major=3, topic=topic, bootstrap_servers=bootstrap_servers) as running,
    ):
        yield running


@contextlib.contextmanager
def start_rest_airflow2(
    work_dir: Path, *, bootstrap_servers: str, name: str = "rest_af2", topic: str | None = None
) -> Iterator[RestAirflow]:
    """Airflow 2.11 (webserver, scheduler; its venv built or updated first) with the observation DAGs,
    behind a counting proxy. Stops the proxy and every Airflow process when the block ends."""
    venv = ensure_airflow2_venv()
    topic, home = _topic_and_home(work_dir, name, bootstrap_servers, topic)
    env = airflow2_env(venv, home, bootstrap_servers=bootstrap_servers, topic=topic, instance_name=name)
    with (
        start_airflow2(venv, env, log_dir=home / "logs", expected_dags=len(OBSERVATION_DAG_IDS)) as airflow,
        _behind_proxy(airflow, name=name, major=2, topic=topic, bootstrap_servers=bootstrap_servers) as running,
    ):
        yield running


def _topic_and_home(work_dir: Path, name: str, bootstrap_servers: str, topic: str | None) -> tuple[str, Path]:
    topic = topic or f"airstream-rest-{name}-{uuid.uuid4().hex[:8]}"
    create_topic(bootstrap_servers, topic)
    return topic, work_dir / f"{name}-{uuid.uuid4().hex[:6]}"


@contextlib.contextmanager
def _behind_proxy(
    airflow: LocalAirflow | LocalAirflow2, *, name: str, major: int, topic: str, bootstrap_servers: str
) -> Iterator[RestAirflow]:
    with CountingProxy(airflow.url) as proxy:
        print(f"\nAirflow {major} ({name}) ready at {airflow.url}, proxy {proxy.url}")
        yield RestAirflow(
            name=name,
            major=major,
            api_version="v2" if major >= 3 else "v1",
            airflow=airflow,
            url=proxy.url,
            upstream_url=airflow.url,
            username=USERNAME,
            password=PASSWORD,
            proxy=proxy,
            topic=topic,
            bootstrap_servers=bootstrap_servers,
        )
