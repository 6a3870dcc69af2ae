"""Shared fixtures: one broker per test session, a fresh topic per test, a topic reader."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.broker import Broker, create_topic, start_broker


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


def read_topic(bootstrap_servers: str, topic: str, *, expected: int, timeout: float = 20.0) -> list[Any]:
    """Every record on ``topic`` (assign + seek to the beginning), waiting for at least ``expected``."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, partition) for partition in partitions])
        consumer.seek_to_beginning()
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
            if len(records) >= expected:
                # One more short poll, so that unexpected extra records are seen too.
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
                break
        return records
    finally:
        consumer.close()


@pytest.fixture
def topic_reader(broker: Broker) -> Callable[..., list[Any]]:
    """``topic_reader(topic, expected=N)``: the records on a topic of the session's broker."""

    def read(topic: str, *, expected: int, timeout: float = 20.0) -> list[Any]:
        return read_topic(broker.bootstrap_servers, topic, expected=expected, timeout=timeout)

    return read
