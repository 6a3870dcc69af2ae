"""The broker killed with ``kill -9`` while the listener publishes, then started again on its
durable storage (Tansu's ``s3://`` engine on a local S3 server): nothing it acknowledged is lost,
what it never acknowledged waits in the spool and follows, and Dagster holds each event once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from airstream.airflow_listener.config import ListenerConfig
from airstream.airflow_listener.delivery import Publisher
from airstream.schemas import TaskInstanceEvent
from devstack.broker import TansuProcess, read_topic
from devstack.figures import SensorDriver, count_figures, load_successes

pytestmark = pytest.mark.integration

INSTANCE = "faults"


def events(count: int) -> list[TaskInstanceEvent]:
    return load_successes(INSTANCE, count)


def test_what_the_broker_acknowledged_survives_kill_9_and_the_rest_follows_from_the_spool(
    tmp_path: Path, durable_broker: TansuProcess, durable_topic: str, sensor_driver: SensorDriver
) -> None:
    config = ListenerConfig(
        spool_dir=tmp_path / "spool",
        bootstrap_servers=durable_broker.bootstrap_servers,
        topic=durable_topic,
        instance_name=INSTANCE,
        delivery_timeout=2.0,
        retry_backoff=60.0,
    )
    publisher = Publisher(config)
    sent = events(80)
    published = 0

    def publish_all() -> None:
        nonlocal published
        for event in sent:
            publisher.publish(event, inline=True)
            published += 1

    worker = threading.Thread(target=publish_all)
    try:
        worker.start()
        while published < 30 and worker.is_alive():
            time.sleep(0.005)
        durable_broker.kill()  # mid-stream: some events in flight, the rest to come
        worker.join(timeout=120)
        assert not worker.is_alive(), "publishing to a dead broker must not hang"
        spooled = {entry.event.event_id for entry in publisher.spool.pending()}
        acknowledged = [event.event_id for event in sent if event.event_id not in spooled]
        durable_broker.start()

        values = [
            r.value for r in read_topic(durable_broker.bootstrap_servers, durable_topic, expected=len(acknowledged))
        ]
        on_topic = {event_id for event_id in acknowledged if any(event_id.encode() in value for value in values)}
        publisher.close()  # a new producer, as a new task process would have
        delivered = publisher.drain(timeout=10, ignore_backoff=True)
    finally:
        publisher.close()
        if not durable_broker.is_alive():
            durable_broker.start()

    sensor_driver.tick_until_quiet()
    figures = count_figures([event.event_id for event in sent], sensor_driver.recorded_ids())
    summary = (
        f"kill -9 of the broker mid-stream: {len(acknowledged)} acknowledged (left the spool), "
        f"{len(on_topic)} of them on the topic after the restart; {len(spooled)} spooled, {delivered} delivered after; "
        f"Dagster: {figures}"
    )
    print(summary)
    assert len(on_topic) == len(acknowledged), summary
    assert spooled and delivered == len(spooled) and publisher.spool.count() == 0, summary
    assert figures.exactly_once, summary
