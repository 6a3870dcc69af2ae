"""``airstream stream`` as a real process against a real broker and a real Dagster instance (SQLite, in a
temporary DAGSTER_HOME): every event recorded once, a SIGTERM exits 0 and a restart resumes, the sensor
records nothing while the stream runs and takes over after it, without recording anything twice."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance

from airstream.dagster_consumer.sources.kafka import TOPIC_ID, KafkaEventSource
from airstream.dagster_consumer.stream_handover import LayeredIds, merged_position
from airstream.dagster_consumer.stream_lease import overlaps, parse_partitions, split_name, split_partitions
from devstack.broker import Broker, publish
from devstack.dagster import tick_with_log
from devstack.figures import SensorDriver, count_figures, etl_observation_defs, recorded_event_ids
from devstack.stream_runner import StreamProcess, dags_by_partition, success_events, wait_for, write_definitions

INSTANCE = "prod"
SENSOR = f"{INSTANCE}__airflow_event_sensor"


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    return home


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[DagsterInstance]:
    with DagsterInstance.from_config(str(dagster_home)) as opened:
        yield opened


@pytest.fixture
def definitions(tmp_path: Path, broker: Broker, topic: str) -> Path:
    path = tmp_path / f"stream_defs_{uuid.uuid4().hex[:8]}.py"
    return write_definitions(path, INSTANCE, broker.bootstrap_servers, topic)


def _stream(name: str, definitions: Path, home: Path, tmp_path: Path, **options: object) -> StreamProcess:
    return StreamProcess(
        name,
        instance=INSTANCE,
        definitions=definitions,
        dagster_home=home,
        log_path=tmp_path / f"{name}.log",
        **options,  # type: ignore[arg-type]
    )


def _recorded(instance: DagsterInstance) -> list[str]:
    return recorded_event_ids(instance, INSTANCE)


@pytest.mark.integration
def test_events_are_recorded_once_and_a_restart_after_sigterm_resumes(
    broker: Broker, topic: str, dagster_home: Path, instance: DagsterInstance, definitions: Path, tmp_path: Path
) -> None:
    dags = [dag for found in dags_by_partition(INSTANCE).values() for dag in found]
    first, second = success_events(INSTANCE, dags, 30), success_events(INSTANCE, dags, 30, first=30)
    stream = _stream("stream-1", definitions, dagster_home, tmp_path)
    try:
        stream.wait_for_line("reading kafka://")
        publish(broker.bootstrap_servers, topic, first, raw_key=b"x")
        wait_for(lambda: len(_recorded(instance)) >= 30, timeout=60, what="30 events recorded")
        assert stream.terminate() == 0, stream.log()
    finally:
        stream.stop()
    assert "SIGTERM: stopping after this batch" in stream.log() and "stopped; 30 event(s) recorded" in stream.log()

    publish(broker.bootstrap_servers, topic, [*second, *first[:5]], raw_key=b"x")  # new ones and redeliveries
    restarted = _stream("stream-2", definitions, dagster_home, tmp_path)
    try:
        wait_for(lambda: len(_recorded(instance)) >= 60, timeout=60, what="60 events recorded")
        restarted.wait_for_line("lag 0 (")  # a status line after it read to the end
        assert restarted.terminate() == 0, restarted.log()
    finally:
        restarted.stop()
    figures = count_figures([e.event_id for e in [*first, *second]], _recorded(instance))
    assert figures.exactly_once, str(figures)
    assert "stopped; 30 event(s) recorded" in restarted.log(), restarted.log()


@pytest.mark.integration
def test_the_sensor_records_nothing_while_the_stream_runs_and_takes_over_after(
    broker: Broker, topic: str, dagster_home: Path, instance: DagsterInstance, definitions: Path, tmp_path: Path
) -> None:
    dags = [dag for found in dags_by_partition(INSTANCE).values() for dag in found]
    during, after = success_events(INSTANCE, dags, 20), success_events(INSTANCE, dags, 12, first=20)
    driver = SensorDriver(instance, etl_observation_defs(INSTANCE, broker.bootstrap_servers, topic), SENSOR)
    stream = _stream("stream", definitions, dagster_home, tmp_path)
    try:
        stream.wait_for_line("reading kafka://")
        publish(broker.bootstrap_servers, topic, during, raw_key=b"x")
        wait_for(lambda: len(_recorded(instance)) >= 20, timeout=60, what="20 events recorded by the stream")
        assert driver.tick() == 0, "the sensor recorded while the stream held its lease"
        sensor = driver.defs.resolve_sensor_def(SENSOR)
        result, logged = tick_with_log(sensor, driver.cursor, instance)
        assert not result.asset_events
        assert any("`airstream stream` records the topic now" in record.getMessage() for record in logged)
        assert stream.terminate() == 0, stream.log()
    finally:
        stream.stop()

    # what comes after the stream stopped, and redeliveries of what the stream recorded
    publish(broker.bootstrap_servers, topic, [*after, *during[:6]], raw_key=b"x")
    driver.tick_until_quiet()
    figures = count_figures([e.event_id for e in [*during, *after]], _recorded(instance))
    assert figures.exactly_once, str(figures)


@pytest.mark.integration
def test_a_split_reads_only_its_partitions(broker: Broker, topic: str) -> None:
    by_partition = dags_by_partition(INSTANCE)
    events = success_events(INSTANCE, [dag for dags in by_partition.values() for dag in dags], 18)
    publish(broker.bootstrap_servers, topic, events, raw_key=b"x")
    source = KafkaEventSource(bootstrap_servers=broker.bootstrap_servers, topic=topic, partitions=[0, 2])
    read: list[str] = []
    position = None
    with source.session(max_wait=0.2):
        for _ in range(10):
            batch = source.read(position)
            position = batch.position
            read.extend(event.dag_id for event in batch.events)
            if batch.caught_up and len(read) >= 12:
                break
    assert sorted(set(read)) == sorted([*by_partition[0], *by_partition[2]])
    assert len(read) == 12
    assert position is not None and {key for key in position if key != TOPIC_ID} == {"0", "2"}
    assert "(partitions 0,2)" in source.describe()
    with pytest.raises(ValueError, match="partitions"):
        KafkaEventSource(bootstrap_servers=broker.bootstrap_servers, topic=topic, partitions=[])


def test_split_names_and_overlaps() -> None:
    assert split_name([1, 0, 1]) == "0,1" and split_name(None) == ""
    assert split_partitions("0,1") == {0, 1} and split_partitions("") is None
    assert parse_partitions(" 2,0 ") == [0, 2]
    for bad in ("", "a", "-1", ","):
        with pytest.raises(ValueError, match="--partitions"):
            parse_partitions(bad)
    assert overlaps("", "2") and overlaps("0,1", "1,2") and not overlaps("0,1", "2")


def test_positions_merge_to_the_furthest_offset_of_the_same_topic() -> None:
    mine = {"0": 5, "1": 9, TOPIC_ID: "a"}
    assert merged_position(mine, [{"0": 7, "2": 3, TOPIC_ID: "a"}]) == {"0": 7, "1": 9, "2": 3, TOPIC_ID: "a"}
    assert merged_position(mine, [{"0": 70, TOPIC_ID: "b"}]) == mine, "a recreated topic's offsets mean nothing"
    assert merged_position(None, [{"0": 7}], frozenset({1})) is None, "no offset of the split: from the start"
    assert merged_position(None, []) is None
    assert merged_position(mine, [None], frozenset({1})) == {"1": 9, TOPIC_ID: "a"}


def test_layered_ids_add_to_their_own_layer_only() -> None:
    from airstream.dagster_consumer.cursor import SeenEvents

    own, other = SeenEvents(), SeenEvents()
    other.add("recorded-by-the-sensor")
    layered = LayeredIds(own, [other])  # type: ignore[list-item]
    assert "recorded-by-the-sensor" in layered
    assert not layered.add("recorded-by-the-sensor")
    assert layered.add("new") and "new" in own and "new" not in other


def test_a_lease_is_held_by_one_owner_and_taken_over_when_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    import airstream.dagster_consumer.stream_lease as stream_lease
    from airstream.dagster_consumer.stream_lease import Lease, live_leases

    clock = [1_000_000.0]
    monkeypatch.setattr(stream_lease.time, "time", lambda: clock[0])
    monkeypatch.setattr(stream_lease.time, "sleep", lambda seconds: None)
    with DagsterInstance.ephemeral() as dagster:
        active = Lease(dagster, INSTANCE, "0,1", seconds=10, owner="active")
        standby = Lease(dagster, INSTANCE, "0,1", seconds=10, owner="standby")
        whole = Lease(dagster, INSTANCE, "", seconds=10, owner="whole-topic")
        other = Lease(dagster, INSTANCE, "2", seconds=10, owner="other-split")
        assert active.try_take()
        assert not standby.try_take() and standby.blocker() is not None
        assert not whole.try_take(), "a split sharing a partition with a live one must wait"
        assert other.try_take(), "a disjoint split runs beside it"
        assert {holder.owner for holder in live_leases(dagster, INSTANCE, clock[0])} == {"active", "other-split"}

        clock[0] += 4
        assert active.renew()  # nothing written yet: a third of the period has not passed
        clock[0] += 4
        assert active.renew() and active.expires == clock[0] + 10
        clock[0] += 11  # the active one died: its lease expired
        assert standby.try_take()
        assert not active.renew(), "a process whose lease another took must stop"
        standby.release()
        assert not standby.held() and active.try_take()
        active.release()
        other.release()
        assert live_leases(dagster, INSTANCE, clock[0]) == []
