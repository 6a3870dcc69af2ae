"""``airstream stream`` killed with ``kill -9`` while events arrive, split over partitions with a hot
standby, and handing over to and from the sensor run by Dagster's own daemon: sent = recorded, none
lost, none twice. Real broker, real Dagster instance (SQLite in a temporary DAGSTER_HOME), the stream
as a real process."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from devstack.broker import Broker, publish
from devstack.dagster import start_dagster
from devstack.figures import count_figures, recorded_event_ids
from devstack.stream_runner import StreamProcess, dags_by_partition, success_events, wait_for, write_definitions

pytestmark = pytest.mark.integration

INSTANCE = "prod"


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return home


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[DagsterInstance]:
    with DagsterInstance.from_config(str(dagster_home)) as opened:
        yield opened


@pytest.fixture
def definitions(tmp_path: Path, broker: Broker, topic: str) -> Path:
    path = tmp_path / f"stream_defs_{uuid.uuid4().hex[:8]}.py"
    return write_definitions(path, INSTANCE, broker.bootstrap_servers, topic)


class Publisher(threading.Thread):
    """Publishes ``events`` in small chunks with pauses, so a process can be killed mid-stream."""

    def __init__(self, broker: Broker, topic: str, events: Sequence[Any], chunk: int = 10, pause: float = 0.05):
        super().__init__(daemon=True)
        self.broker, self.topic, self.events, self.chunk, self.pause = broker, topic, list(events), chunk, pause
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for start in range(0, len(self.events), self.chunk):
                chunk = self.events[start : start + self.chunk]
                publish(self.broker.bootstrap_servers, self.topic, chunk, raw_key=b"x")
                time.sleep(self.pause)
        except BaseException as error:
            self.error = error

    def finish(self) -> None:
        self.join(timeout=120)
        assert self.error is None, f"publishing failed: {self.error!r}"


def _stream(name: str, definitions: Path, home: Path, tmp_path: Path, partitions: str | None = None) -> StreamProcess:
    return StreamProcess(
        name,
        instance=INSTANCE,
        definitions=definitions,
        dagster_home=home,
        log_path=tmp_path / f"{name}.log",
        partitions=partitions,
    )


def _all_dags() -> list[str]:
    return [dag for dags in dags_by_partition(INSTANCE).values() for dag in dags]


def test_kill_9_mid_stream_then_a_restart_records_every_event_once(
    broker: Broker, topic: str, dagster_home: Path, instance: DagsterInstance, definitions: Path, tmp_path: Path
) -> None:
    events = success_events(INSTANCE, _all_dags(), 400)
    sent = [event.event_id for event in events]
    publisher = Publisher(broker, topic, events)
    streams = [_stream("stream-1", definitions, dagster_home, tmp_path)]
    try:
        streams[0].wait_for_line("reading kafka://")
        publisher.start()
        for number, kill_after in enumerate((60, 200), start=2):  # twice, at different moments
            wait_for(
                lambda n=kill_after: len(recorded_event_ids(instance, INSTANCE)) >= n,
                timeout=90,
                what=f"{kill_after} events recorded",
            )
            streams[-1].kill()
            streams.append(_stream(f"stream-{number}", definitions, dagster_home, tmp_path))
        publisher.finish()
        wait_for(lambda: len(set(recorded_event_ids(instance, INSTANCE))) >= len(sent), timeout=120, what="all events")
        streams[-1].wait_for_line("lag 0 (")
        assert streams[-1].terminate() == 0, streams[-1].log()
    finally:
        for stream in streams:
            stream.stop()
    figures = count_figures(sent, recorded_event_ids(instance, INSTANCE))
    assert figures.exactly_once, str(figures)
    # the restarts waited for the killed process's lease, then took over
    assert all("active as" in stream.log() for stream in streams), streams[-1].log()


def test_two_splits_and_a_standby_that_takes_over_from_a_killed_one(
    broker: Broker, topic: str, dagster_home: Path, instance: DagsterInstance, definitions: Path, tmp_path: Path
) -> None:
    by_partition = dags_by_partition(INSTANCE)
    events = success_events(INSTANCE, _all_dags(), 300)
    sent = [event.event_id for event in events]
    first = _stream("split-01", definitions, dagster_home, tmp_path, partitions="0,1")
    second = _stream("split-2", definitions, dagster_home, tmp_path, partitions="2")
    standby = None
    try:
        first.wait_for_line("reading kafka://")
        second.wait_for_line("reading kafka://")
        standby = _stream("split-01-standby", definitions, dagster_home, tmp_path, partitions="0,1")
        standby.wait_for_line("standby:")
        publisher = Publisher(broker, topic, events)
        publisher.start()
        wait_for(lambda: len(recorded_event_ids(instance, INSTANCE)) >= 80, timeout=90, what="80 events recorded")
        first.kill()
        standby.wait_for_line("reading kafka://", timeout=60)
        publisher.finish()
        wait_for(lambda: len(set(recorded_event_ids(instance, INSTANCE))) >= len(sent), timeout=120, what="all events")
        for stream in (standby, second):
            stream.wait_for_line("lag 0 (")
            assert stream.terminate() == 0, stream.log()
    finally:
        for stream in (first, second, standby):
            if stream is not None:
                stream.stop()
    figures = count_figures(sent, recorded_event_ids(instance, INSTANCE))
    assert figures.exactly_once, str(figures)
    # each split read its own partitions only
    assert "(partitions 0,1)" in standby.log() and "(partitions 2)" in second.log()
    dags_of_2 = set(by_partition[2])
    assert dags_of_2.isdisjoint(by_partition[0] + by_partition[1])


def test_the_sensor_daemon_and_the_stream_hand_the_topic_over_both_ways(
    broker: Broker, topic: str, dagster_home: Path, instance: DagsterInstance, definitions: Path, tmp_path: Path
) -> None:
    """Dagster's own daemon ticks the sensor (cursor committed in the instigator state); a stream
    starts from that cursor, the sensor defers while it runs, and resumes from its position."""
    dags = _all_dags()
    before, during, after = (success_events(INSTANCE, dags, 30, first=start) for start in (0, 30, 60))
    sent = [event.event_id for event in [*before, *during, *after]]
    dagster, _ = start_dagster(dagster_home, env={}, log_dir=tmp_path, definitions=definitions)
    stream = None
    try:
        publish(broker.bootstrap_servers, topic, before, raw_key=b"x")
        wait_for(lambda: len(recorded_event_ids(instance, INSTANCE)) >= 30, timeout=120, what="the sensor's records")
        stream = _stream("stream", definitions, dagster_home, tmp_path)
        stream.wait_for_line("reading kafka://")
        assert "from the beginning" not in stream.log(), "the stream did not start from the sensor's cursor"
        publish(broker.bootstrap_servers, topic, [*during, *before[:5]], raw_key=b"x")
        wait_for(lambda: len(recorded_event_ids(instance, INSTANCE)) >= 60, timeout=60, what="the stream's records")
        wait_for(lambda: "records the topic now" in dagster.log_tail(400), timeout=60, what="a deferred sensor tick")
        assert stream.terminate() == 0, stream.log()
        publish(broker.bootstrap_servers, topic, [*after, *during[:5]], raw_key=b"x")
        wait_for(lambda: len(recorded_event_ids(instance, INSTANCE)) >= 90, timeout=120, what="the sensor again")
        time.sleep(6)  # another daemon tick or more: nothing further may be recorded
    finally:
        if stream is not None:
            stream.stop()
        dagster.stop()
    figures = count_figures(sent, recorded_event_ids(instance, INSTANCE))
    assert figures.exactly_once, str(figures)
    assert "stopped; 30 event(s) recorded" in stream.log(), stream.log()
