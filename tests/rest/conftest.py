"""Fixtures for the REST path's integration tests: ONE real Airflow 3.3 and ONE real Airflow 2.11 per
test session, each behind a counting proxy.

``airflow3_rest`` and ``airflow2_rest`` return a :class:`devstack.rest_stack.RestAirflow`:

- ``url``: the proxy's base URL. Point the client under test here (``af.auth_backend()`` gives the
  right backend for the version: JWT on Airflow 3, basic auth on Airflow 2), so its requests are counted.
- ``proxy``: the :class:`devstack.counting_proxy.CountingProxy`; ``with af.proxy.counting() as window:``
  counts one stretch of a test (``window.count("POST", "/api/v2/dags/~/dagRuns/list")``),
  ``af.proxy.fail_next(2, status=503)`` makes the next requests fail to test retries, and
  ``af.proxy.statuses`` lists ``(method, pattern, status)`` of every answer.
- ``admin_api()``: devstack's REST helper straight to Airflow (not counted), for setup:
  ``trigger``, ``wait_for_run``, ``set_task_state``, ``dag_runs``.
- ``airflow``: the devstack handle (env, processes); ``name``, ``topic``, ``bootstrap_servers``:
  the listener's instance name and where it publishes; ``username``/``password``; ``dag_ids``:
  the four observation DAGs (``devstack/observation_dags``).

Both instances publish to ONE topic (``topic`` is the same on both), as federated instances do:
each sensor keeps to its own instance's events by name.

Both instances are shared by every test of the session: runs other tests triggered are there too,
so select your own runs (by the run ids you triggered, or a time window) and never assume an empty
instance. Each takes 20 to 60 s to start; Airflow 2's venv is built on first use (about a minute).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.broker import Broker, create_topic
from devstack.rest_stack import RestAirflow, start_rest_airflow2, start_rest_airflow3


@pytest.fixture(scope="session")
def federated_topic(broker: Broker) -> str:
    """The one topic both instances' listeners publish to."""
    topic = f"airstream-federated-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap_servers, topic, partitions=3)
    return topic


@pytest.fixture(scope="session")
def airflow3_rest(broker: Broker, work_dir: Path, federated_topic: str) -> Iterator[RestAirflow]:
    """Airflow 3.3 (REST API v2, JWT) with the observation DAGs, behind a counting proxy, once per session."""
    with start_rest_airflow3(work_dir, bootstrap_servers=broker.bootstrap_servers, topic=federated_topic) as airflow:
        yield airflow


@pytest.fixture(scope="session")
def airflow2_rest(broker: Broker, work_dir: Path, federated_topic: str) -> Iterator[RestAirflow]:
    """Airflow 2.11 (REST API v1, basic auth) with the observation DAGs, behind a counting proxy, once per session."""
    with start_rest_airflow2(work_dir, bootstrap_servers=broker.bootstrap_servers, topic=federated_topic) as airflow:
        yield airflow
