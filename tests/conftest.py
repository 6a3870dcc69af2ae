"""Shared fixtures: one broker per test session, a fresh topic per test, a topic reader."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.broker import Broker, create_topic, read_topic, start_broker


@pytest.fixture(scope="session")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("airstream")


@pytest.fixture(scope="session")
def broker(work_dir: Path) -> Iterator[Broker]:
    """A real Kafka-protocol broker: KAFKA_BOOTSTRAP_SERVERS, Kafka in Docker, or embedded Tansu."""
    with start_broker(work_dir / "broker") as running:
        yield running


@pytest.fixture
def topic(broker: Broker) -> str:
    """A new topic with 3 partitions, so tests never see each other's events."""
    name = f"airstream-test-{uuid.uuid4().hex[:12]}"
    create_topic(broker.bootstrap_servers, name, partitions=3)
    return name


@pytest.fixture
def topic_reader(broker: Broker) -> Callable[..., list[Any]]:
    """``topic_reader(topic, expected=N)``: the records on a topic of the session's broker."""

    def read(topic: str, *, expected: int, timeout: float = 20.0) -> list[Any]:
        return read_topic(broker.bootstrap_servers, topic, expected=expected, timeout=timeout)

    return read
