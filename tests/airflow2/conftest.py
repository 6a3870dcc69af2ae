"""Fixtures for the Airflow 2.11 tests: the virtual environment holding Airflow 2.11 and the listener,
built (or brought up to date with the working tree) once per session, and a topic reader that waits
for the topic to go quiet instead of for a known number of records."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from devstack.airflow2 import Airflow2Venv, ensure_airflow2_venv
from devstack.broker import Broker


@pytest.fixture(scope="session")
def airflow2_venv() -> Airflow2Venv:
    """``<repo>/.work/airflow-2.11.2-venv`` (or ``$AIRSTREAM_AIRFLOW2_VENV``), holding the current sources.

    About 45 s the first time; later sessions only reinstall airstream when its sources changed.
    """
    started = time.monotonic()
    venv = ensure_airflow2_venv()
    print(f"\nAirflow 2.11 venv ready in {time.monotonic() - started:.1f} s: {venv.path}")
    return venv


@pytest.fixture
def drain_topic(broker: Broker) -> Callable[..., list[Any]]:
    """``drain_topic(topic)``: every record on the topic once no new one arrived for ``quiet`` seconds."""

    def drain(topic: str, *, quiet: float = 2.0, timeout: float = 30.0) -> list[Any]:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False)
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            consumer.assign([TopicPartition(topic, partition) for partition in partitions])
            consumer.seek_to_beginning()
            records: list[Any] = []
            deadline = time.monotonic() + timeout
            last_new = time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - last_new < quiet:
                for batch in consumer.poll(timeout_ms=250).values():
                    records.extend(batch)
                    last_new = time.monotonic()
            return records
        finally:
            consumer.close()

    return drain
