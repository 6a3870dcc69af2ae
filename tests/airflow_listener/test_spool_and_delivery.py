"""The durable spool, delivery to Kafka (unreachable and real broker), the spool CLI, the hooks."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from airstream.airflow_listener import hooks, spool_cli
from airstream.airflow_listener.config import ListenerConfig
from airstream.airflow_listener.delivery import Publisher
from airstream.airflow_listener.kafka_sink import KafkaSink
from airstream.airflow_listener.spool import Spool
from airstream.schemas import EventType, TaskInstanceEvent, message_key, parse_event, serialize_event
from airstream.schemas.events import DagRunEvent
from devstack.broker import Broker, read_topic
from devstack.processes import free_port

INSTANCE = "test_airflow"


def task_event(dag_id: str = "etl", task_id: str = "extract", try_number: int = 1) -> TaskInstanceEvent:
    return TaskInstanceEvent.new(
        instance=INSTANCE,
        event_type=EventType.TASK_INSTANCE_SUCCESS,
        state="success",
        dag_id=dag_id,
        run_id="manual__1",
        task_id=task_id,
        try_number=try_number,
        producer="airstream/test",
    )


def dag_event(dag_id: str = "etl", state: str = "running") -> DagRunEvent:
    return DagRunEvent.new(
        instance=INSTANCE,
        event_type=EventType(f"dag_run.{state}"),
        state=state,
        dag_id=dag_id,
        run_id="manual__1",
        producer="airstream/test",
    )


def closed_port_address() -> str:
    return f"127.0.0.1:{free_port()}"


def listener_config(spool_dir: Path, bootstrap_servers: str, topic: str = "airflow.events") -> ListenerConfig:
    return ListenerConfig(
        spool_dir=spool_dir,
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        instance_name=INSTANCE,
        delivery_timeout=1.0,
        retry_backoff=30.0,
    )


def spooled_ids(spool: Spool) -> list[str]:
    return [entry.event.event_id for entry in spool.pending()]


# --- the spool --------------------------------------------------------------------------------


def test_spool_returns_events_in_the_order_they_were_put(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.pending() == []  # the directory does not even exist yet
    events = [task_event(task_id="a"), dag_event(), task_event(task_id="b")]
    paths = [spool.put(event) for event in events]
    assert all(path.exists() for path in paths)
    pending = spool.pending()
    assert [entry.event for entry in pending] == events
    assert [entry.path for entry in pending] == paths
    assert spool.count() == 3
    assert [entry.event for entry in spool.pending(limit=2)] == events[:2]
    assert not [name for name in os.listdir(spool.directory) if name.endswith(".tmp")]


def test_spool_keeps_order_for_a_burst_of_events(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    events = [task_event(try_number=n) for n in range(1, 51)]
    for event in events:
        spool.put(event)
    assert spooled_ids(spool) == [event.event_id for event in events]


def test_spool_remove(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    first, second = task_event(task_id="a"), task_event(task_id="b")
    path = spool.put(first)
    spool.put(second)
    spool.remove(path)
    assert not path.exists()
    assert spooled_ids(spool) == [second.event_id]
    spool.remove(path)  # removing twice (another process delivered it) is fine
    assert spool.count() == 1


def test_corrupt_files_are_moved_to_rejected_and_the_rest_still_comes_back(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    good = [task_event(task_id="a"), task_event(task_id="b")]
    spool.put(good[0])
    # Oldest names, so they are read first; one is not JSON, one is JSON but not an event.
    garbage = spool.directory / "00000000000000000001-1-garbage.json"
    garbage.write_bytes(b"\x00\x01 half a fi")
    wrong_major = spool.directory / "00000000000000000002-1-future.json"
    document = json.loads(serialize_event(task_event(task_id="z")))
    document["schema_version"] = "9.0"
    wrong_major.write_text(json.dumps(document))
    spool.put(good[1])

    assert [entry.event for entry in spool.pending()] == good
    rejected = spool.directory / "rejected"
    assert sorted(os.listdir(rejected)) == [garbage.name, wrong_major.name]
    assert (rejected / garbage.name).read_bytes() == b"\x00\x01 half a fi"  # kept as it was, for a person
    assert not garbage.exists()
    assert not wrong_major.exists()
    assert spool.count() == 2  # rejected files are no longer counted as waiting


def test_drain_lock_excludes_a_second_holder(tmp_path: Path) -> None:
    first, second = Spool(tmp_path / "spool"), Spool(tmp_path / "spool")  # as two processes would
    with first.drain_lock(1.0) as held:
        assert held is True
        with second.drain_lock(0.05) as also_held:
            assert also_held is False
    with second.drain_lock(0.05) as held_after_release:
        assert held_after_release is True


def test_broker_unavailable_marker(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert not spool.broker_failed_within(30)
    spool.mark_broker_unavailable()
    assert spool.broker_failed_within(30)
    assert Spool(tmp_path / "spool").broker_failed_within(30)  # shared through the directory
    spool.mark_broker_available()
    assert not spool.broker_failed_within(30)
    spool.mark_broker_available()  # idempotent


# --- delivery ---------------------------------------------------------------------------------


def test_unreachable_broker_spools_and_backs_off(tmp_path: Path) -> None:
    config = listener_config(tmp_path / "spool", closed_port_address())
    publisher = Publisher(config)
    first, second = task_event(task_id="a"), task_event(task_id="b")

    publisher.publish(first, inline=True)  # must not raise
    assert spooled_ids(publisher.spool) == [first.event_id]
    assert publisher.spool.broker_failed_within(config.retry_backoff)

    started = time.monotonic()
    publisher.publish(second, inline=True)
    elapsed = time.monotonic() - started
    assert elapsed < 0.5, f"the second publish waited {elapsed:.2f} s for a broker known to be down"
    assert spooled_ids(publisher.spool) == [first.event_id, second.event_id]

    # Another process on the machine sees the same back-off.
    other = Publisher(config)
    assert other.drain(timeout=config.delivery_timeout) == 0
    assert other.spool.count() == 2


class _MetadataNeverArrives:
    """Stands in for kafka.KafkaProducer when bootstrap worked but the topic's metadata never comes
    (topic not created and auto-create off, or the broker died right after bootstrap): kafka-python's
    ``KafkaProducer.send`` then raises KafkaTimeoutError itself, after max_block_ms, instead of
    returning a failed future."""

    def __init__(self, **config: Any) -> None:
        self.config = config

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> Any:
        from kafka.errors import KafkaTimeoutError

        raise KafkaTimeoutError("Failed to update metadata after 1.0 secs.")

    def close(self, timeout: float | None = None) -> None:
        pass


def test_a_send_that_cannot_get_topic_metadata_counts_as_broker_trouble(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kafka

    monkeypatch.setattr(kafka, "KafkaProducer", _MetadataNeverArrives)
    config = listener_config(tmp_path / "spool", "127.0.0.1:9092")
    publisher = Publisher(config)
    event = task_event()
    publisher.publish(event, inline=True)  # "never raises for broker trouble"
    assert spooled_ids(publisher.spool) == [event.event_id]
    assert publisher.spool.broker_failed_within(config.retry_backoff)  # so the next task does not wait again


@pytest.fixture
def real_sink_publisher(broker: Broker, topic: str, tmp_path: Path) -> Iterator[Publisher]:
    config = listener_config(tmp_path / "spool", broker.bootstrap_servers, topic)
    sink = KafkaSink(config)
    try:
        yield Publisher(config, sink=sink)
    finally:
        sink.close()


def read_back(bootstrap_servers: str, topic: str, expected: int, timeout: float = 10.0) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic)
        assert partitions, f"topic {topic} has no partitions"
        consumer.assign([TopicPartition(topic, partition) for partition in partitions])
        consumer.seek_to_beginning()
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def test_events_spooled_during_an_outage_are_delivered_oldest_first(
    broker: Broker, topic: str, tmp_path: Path, real_sink_publisher: Publisher
) -> None:
    spool_dir = real_sink_publisher.config.spool_dir
    down = Publisher(listener_config(spool_dir, closed_port_address(), topic))
    events = [
        dag_event("etl", "running"),
        task_event("etl", "extract"),
        dag_event("report", "running"),
        task_event("etl", "load"),
        task_event("report", "render"),
        dag_event("etl", "success"),
        dag_event("report", "failed"),
    ]
    for event in events:
        down.publish(event, inline=True)
    assert spooled_ids(down.spool) == [event.event_id for event in events]

    delivered = real_sink_publisher.drain(timeout=10, ignore_backoff=True)

    assert delivered == len(events)
    assert real_sink_publisher.spool.count() == 0
    assert not real_sink_publisher.spool.broker_failed_within(30)  # the back-off is lifted

    records = read_back(broker.bootstrap_servers, topic, expected=len(events))
    assert len(records) == len(events)
    received = [parse_event(record.value) for record in records]
    assert sorted(event.event_id for event in received) == sorted(event.event_id for event in events)
    for record, event in zip(records, received, strict=True):
        assert record.key == message_key(INSTANCE, event.dag_id)
    for dag_id in ("etl", "report"):
        of_dag = sorted(
            (r for r, e in zip(records, received, strict=True) if e.dag_id == dag_id), key=lambda r: r.offset
        )
        assert len({record.partition for record in of_dag}) == 1, f"{dag_id} events are spread over partitions"
        expected_order = [event.event_id for event in events if event.dag_id == dag_id]
        assert [parse_event(record.value).event_id for record in of_dag] == expected_order  # oldest first


def test_inline_publish_to_a_live_broker_leaves_nothing_spooled(
    broker: Broker, topic: str, real_sink_publisher: Publisher
) -> None:
    event = task_event()
    real_sink_publisher.publish(event, inline=True)
    assert real_sink_publisher.spool.count() == 0
    records = read_back(broker.bootstrap_servers, topic, expected=1)
    assert [parse_event(record.value).event_id for record in records] == [event.event_id]


def test_many_events_from_a_long_lived_process_are_spooled_and_sent_in_the_background_in_order(
    broker: Broker, topic: str, real_sink_publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    spooled_by: set[str] = set()
    put = real_sink_publisher.spool.put

    def recording_put(event: Any) -> Path:
        spooled_by.add(threading.current_thread().name)
        return put(event)

    monkeypatch.setattr(real_sink_publisher.spool, "put", recording_put)
    events = [task_event(task_id=f"task_{index}") for index in range(50)]
    real_sink_publisher.publish_many(events, inline=False)
    records = read_back(broker.bootstrap_servers, topic, expected=50)
    assert [parse_event(record.value).event_id for record in records] == [event.event_id for event in events]
    deadline = time.monotonic() + 5
    while real_sink_publisher.spool.count() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert real_sink_publisher.spool.count() == 0
    assert spooled_by == {"airstream-delivery"}, "the caller (the scheduler loop) never writes the spool itself"


def test_many_events_published_inline_are_spooled_before_the_call_returns(tmp_path: Path) -> None:
    publisher = Publisher(listener_config(tmp_path / "spool", closed_port_address()))
    events = [task_event(task_id="a"), dag_event(state="success")]
    publisher.publish_many(events, inline=True)  # the broker is down: both must wait on disk
    assert spooled_ids(publisher.spool) == [event.event_id for event in events]


# --- the spool CLI ----------------------------------------------------------------------------


def test_spool_cli_status_and_flush(
    broker: Broker, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spool_dir = tmp_path / "cli-spool"
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__TOPIC", topic)
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__SPOOL_DIR", str(spool_dir))
    # The configuration is read when the command runs, not cached from an earlier import.
    assert ListenerConfig.from_airflow().spool_dir == spool_dir
    assert ListenerConfig.from_airflow().topic == topic

    spool = Spool(spool_dir)
    events = [task_event(task_id="a"), task_event(task_id="b"), dag_event()]
    for event in events:
        spool.put(event)
    spool.mark_broker_unavailable()  # flush ignores the back-off

    assert spool_cli.main(["status"]) == 0
    assert f"3 event(s) waiting in {spool_dir}" in capsys.readouterr().out
    assert spool.count() == 3  # status delivers nothing

    assert spool_cli.main(["flush", "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    assert "delivered 3 event(s)" in out
    assert "0 left" in out
    assert spool.count() == 0
    records = read_back(broker.bootstrap_servers, topic, expected=3)
    assert sorted(parse_event(r.value).event_id for r in records) == sorted(e.event_id for e in events)

    assert spool_cli.main(["status"]) == 0
    assert "0 event(s) waiting" in capsys.readouterr().out


def test_spool_cli_reports_a_bad_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__SPOOL_DIR", str(tmp_path / "spool"))
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__DELIVERY_TIMEOUT", "30")
    assert spool_cli.main(["status"]) == 2
    assert "delivery_timeout" in capsys.readouterr().err


def test_spool_cli_flush_to_an_unreachable_broker_returns_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spool_dir = tmp_path / "spool"
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS", closed_port_address())
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__SPOOL_DIR", str(spool_dir))
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__DELIVERY_TIMEOUT", "1")
    Spool(spool_dir).put(task_event())
    assert spool_cli.main(["flush", "--timeout", "1"]) == 1
    assert "1 left" in capsys.readouterr().out
    assert Spool(spool_dir).count() == 1


# --- the hooks --------------------------------------------------------------------------------


@pytest.fixture
def fresh_hooks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The hooks module with no publisher yet, configured to spool under tmp_path, broker down."""
    spool_dir = tmp_path / "hook-spool"
    monkeypatch.setattr(hooks, "_publisher", None)
    monkeypatch.setattr(hooks, "_disabled", False)
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS", closed_port_address())
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__SPOOL_DIR", str(spool_dir))
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__INSTANCE_NAME", INSTANCE)
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__DELIVERY_TIMEOUT", "1")
    monkeypatch.setattr(sys, "argv", ["airflow", "tasks", "run", "etl", "extract"])  # inline delivery
    return spool_dir


def test_hooks_never_raise(fresh_hooks: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("ERROR", logger="airstream.airflow_listener.hooks"):
        assert hooks.on_task_instance_success(None, object()) is None
        assert hooks.on_dag_run_failed(object(), "msg") is None
    assert "on_task_instance_success failed" in caplog.text
    assert "on_dag_run_failed failed" in caplog.text
    assert Spool(fresh_hooks).count() == 0


def test_a_bad_configuration_keeps_events_in_the_spool_until_it_is_fixed(
    fresh_hooks: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker, topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__SECURITY_PROTOCOL", "bogus")
    ti = SimpleNamespace(dag_id="etl", task_id="t", run_id="r", try_number=1, state="success")
    with caplog.at_level("ERROR", logger="airstream.airflow_listener.hooks"):
        assert hooks.on_task_instance_success(None, ti) is None
    assert "security_protocol='BOGUS'" in caplog.text and str(fresh_hooks) in caplog.text
    (kept,) = Spool(fresh_hooks).pending()
    assert kept.event.instance == INSTANCE

    # Fixed: the next process's first event takes the kept one along.
    monkeypatch.delenv("AIRFLOW__AIRSTREAM__SECURITY_PROTOCOL")
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__TOPIC", topic)
    monkeypatch.setattr(hooks, "_publisher", None)
    assert hooks.on_task_instance_running(None, ti) is None
    assert Spool(fresh_hooks).count() == 0
    delivered = [
        parse_event(record.value).event_id for record in read_topic(broker.bootstrap_servers, topic, expected=2)
    ]
    assert kept.event.event_id in delivered and len(delivered) == 2


def test_hook_spools_when_the_broker_is_down(fresh_hooks: Path) -> None:
    Spool(fresh_hooks).mark_broker_unavailable()  # skip the connection attempt
    ti = SimpleNamespace(dag_id="etl", task_id="extract", run_id="manual__1", try_number=1, state="up_for_retry")
    assert hooks.on_task_instance_failed(None, ti, RuntimeError("boom")) is None
    pending = Spool(fresh_hooks).pending()
    assert len(pending) == 1
    event = pending[0].event
    assert event.event_type == EventType.TASK_INSTANCE_UP_FOR_RETRY
    assert event.instance == INSTANCE
    assert event.reported_by == "task"


def test_disabled_listener_publishes_nothing(fresh_hooks: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__ENABLED", "False")
    ti = SimpleNamespace(dag_id="etl", task_id="extract", run_id="manual__1", try_number=1, state="success")
    assert hooks.on_task_instance_success(None, ti) is None
    assert hooks.get_publisher() is None
    assert not fresh_hooks.exists()


# --- the back-off, shared by the processes of a machine ----------------------------------------


class _RecordingSink(KafkaSink):
    """A sink that records which threads tried the broker, and always finds it down."""

    def __init__(self, config: ListenerConfig) -> None:
        super().__init__(config)
        self.tried_by: list[str] = []

    def send(self, events: Any, deadline: float) -> int:
        from airstream.airflow_listener.kafka_sink import DeliveryError

        self.tried_by.append(threading.current_thread().name)
        raise DeliveryError("Kafka at test did not acknowledge: connection refused")


def test_a_drain_queued_on_the_lock_rechecks_the_back_off_after_getting_it(tmp_path: Path) -> None:
    config = listener_config(tmp_path / "spool", closed_port_address())
    holder = Spool(config.spool_dir)  # another process, draining while the broker dies
    sink = _RecordingSink(config)
    waiter = Publisher(config, sink=sink)
    waiter.spool.put(task_event())
    checked = threading.Event()
    check = waiter.spool.broker_failed_within

    def recording_check(seconds: float) -> bool:
        checked.set()
        return check(seconds)

    waiter.spool.broker_failed_within = recording_check  # type: ignore[method-assign]
    with holder.drain_lock(1.0) as held:
        assert held
        queued = threading.Thread(target=waiter.drain, args=(5.0,), name="queued-task")
        queued.start()
        assert checked.wait(5), "the queued drain never checked the back-off"
        holder.mark_broker_unavailable()  # the holder found the broker dead, then lets go
    queued.join(10)
    assert not queued.is_alive()
    assert sink.tried_by == [], "a task queued on the lock tried a broker another process just found dead"
    assert waiter.spool.count() == 1


def test_only_an_acknowledgement_clears_the_back_off(broker: Broker, topic: str, tmp_path: Path) -> None:
    config = listener_config(tmp_path / "spool", broker.bootstrap_servers, topic)
    spool = Spool(config.spool_dir)
    spool.mark_broker_unavailable()  # another process just found the broker dead

    # A drain that finds nothing to send never reached the broker.
    assert Publisher(config).drain(timeout=1.0, ignore_backoff=True) == 0
    assert spool.broker_failed_within(config.retry_backoff)

    # A drain that sent nothing (the broker is down for it) leaves the marker too.
    spool.put(task_event())
    down = Publisher(listener_config(config.spool_dir, closed_port_address(), topic))
    assert down.drain(timeout=1.0, ignore_backoff=True) == 0
    assert spool.broker_failed_within(config.retry_backoff)

    # A real acknowledgement clears it.
    up = Publisher(config)
    try:
        assert up.drain(timeout=10.0, ignore_backoff=True) == 1
    finally:
        up.close()
    assert not spool.broker_failed_within(config.retry_backoff)


def test_a_disabled_listener_spools_nothing_even_with_another_option_invalid(
    fresh_hooks: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__ENABLED", "False")
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__SECURITY_PROTOCOL", "bogus")
    ti = SimpleNamespace(dag_id="etl", task_id="extract", run_id="manual__1", try_number=1, state="success")
    assert hooks.on_task_instance_success(None, ti) is None
    assert hooks.get_publisher() is None
    assert not fresh_hooks.exists()


# --- durability -------------------------------------------------------------------------------


def _record_disk_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Record renames, unlinks and fsyncs, in order; an fsync is recorded as 'dir' or 'file'."""
    import stat

    calls: list[tuple[str, str]] = []
    fsync, replace, unlink = os.fsync, os.replace, Path.unlink

    def recording_fsync(fd: int) -> None:
        calls.append(("fsync", "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"))
        fsync(fd)

    def recording_replace(src: Any, dst: Any) -> None:
        calls.append(("replace", Path(dst).name))
        replace(src, dst)

    def recording_unlink(path: Path, missing_ok: bool = False) -> None:
        calls.append(("unlink", path.name))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "replace", recording_replace)
    monkeypatch.setattr(Path, "unlink", recording_unlink)
    return calls


def test_put_fsyncs_the_file_then_the_directory_after_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    calls = _record_disk_calls(monkeypatch)
    path = spool.put(task_event())
    assert calls == [("fsync", "file"), ("replace", path.name), ("fsync", "dir")]


def test_removing_delivered_events_fsyncs_the_directory_once_per_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path / "spool")
    paths = [spool.put(task_event(task_id=name)) for name in "abc"]
    calls = _record_disk_calls(monkeypatch)
    spool.remove_many(paths)
    assert calls == [("unlink", path.name) for path in paths] + [("fsync", "dir")]
    assert spool.count() == 0


def test_temporary_files_left_by_a_crash_are_never_sent_and_removed_once_stale(
    broker: Broker, topic: str, tmp_path: Path, real_sink_publisher: Publisher
) -> None:
    spool = real_sink_publisher.spool
    spool.directory.mkdir(parents=True)
    left_by_crash = spool.directory / ".00000000000000000001-99-crashed.json.tmp"
    left_by_crash.write_bytes(serialize_event(task_event(task_id="crashed")))
    an_hour_ago = time.time() - 3600
    os.utime(left_by_crash, (an_hour_ago, an_hour_ago))
    being_written = spool.directory / ".00000000000000000002-98-writing.json.tmp"
    being_written.write_bytes(b'{"half')
    hidden_json = spool.directory / ".00000000000000000003-97-hidden.json"  # not a spool name either
    hidden_json.write_bytes(serialize_event(task_event(task_id="hidden")))
    event = task_event(task_id="real")
    spool.put(event)

    assert spooled_ids(spool) == [event.event_id]
    assert real_sink_publisher.drain(timeout=10) == 1

    assert not left_by_crash.exists()
    assert being_written.exists(), "a young temporary file may still be being written"
    records = read_back(broker.bootstrap_servers, topic, expected=2, timeout=3)
    assert [parse_event(record.value).event_id for record in records] == [event.event_id]


# --- logs -------------------------------------------------------------------------------------


@pytest.fixture
def kafka_logger_unset() -> Iterator[None]:
    import logging

    kafka_logger = logging.getLogger("kafka")
    level = kafka_logger.level
    kafka_logger.setLevel(logging.NOTSET)  # as in a fresh task process
    try:
        yield
    finally:
        kafka_logger.setLevel(level)


def test_an_unreachable_broker_writes_one_airstream_warning_and_no_kafka_errors(
    tmp_path: Path, kafka_logger_unset: None, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = Publisher(listener_config(tmp_path / "spool", closed_port_address()))
    with caplog.at_level("INFO"):
        publisher.publish(task_event(), inline=True)
    kafka_lines = [r for r in caplog.records if r.name.startswith("kafka") and r.levelname in {"WARNING", "ERROR"}]
    assert kafka_lines == [], "kafka-python wrote warnings or errors into a task's log"
    ours = [r for r in caplog.records if r.name.startswith("airstream") and r.levelname == "WARNING"]
    assert len(ours) == 1
    assert "1 event(s) stay spooled" in ours[0].getMessage()


def test_a_level_the_deployment_set_for_the_kafka_logger_is_kept(kafka_logger_unset: None) -> None:
    import logging

    from airstream.airflow_listener.kafka_sink import quiet_kafka_client_logs

    logging.getLogger("kafka").setLevel(logging.DEBUG)
    quiet_kafka_client_logs()
    assert logging.getLogger("kafka").level == logging.DEBUG


# --- records the broker refuses for good --------------------------------------------------------


def test_a_record_refused_for_good_is_dead_lettered_and_the_events_behind_it_go_on(
    broker: Broker, topic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = listener_config(tmp_path / "spool", broker.bootstrap_servers, topic)
    oversized = DagRunEvent.new(
        instance=INSTANCE,
        event_type=EventType.DAG_RUN_SUCCESS,
        state="success",
        dag_id="etl",
        run_id="manual__1",
        producer="airstream/test",
        task_ids=[f"task_{index:05d}" for index in range(2000)],
    )
    before = [task_event("etl", "extract"), dag_event("report", "running")]
    after = [task_event("etl", "load"), dag_event("report", "success")]
    largest_normal = max(len(serialize_event(event)) for event in before + after)
    assert len(serialize_event(oversized)) > 10 * largest_normal
    # Larger than the producer may send, with room for every normal event.
    sink = KafkaSink(config, producer_options={"max_request_size": 4 * largest_normal})
    publisher = Publisher(config, sink=sink)
    for event in [*before, oversized, *after]:
        publisher.spool.put(event)
    publisher.spool.mark_broker_unavailable()  # set by an outage; the refusal must not keep it
    try:
        assert publisher.drain(timeout=10, ignore_backoff=True) == 4
    finally:
        sink.close()

    assert publisher.spool.count() == 0
    assert not publisher.spool.broker_failed_within(config.retry_backoff)
    dead = publisher.spool.dead_letter_directory
    (dead_file,) = sorted(dead.glob("*.json"))
    assert parse_event(dead_file.read_bytes()).event_id == oversized.event_id
    reason = dead_file.with_name(dead_file.name.removesuffix(".json") + ".reason.txt").read_text()
    assert "MessageSizeTooLarge" in reason and oversized.event_id in reason

    records = read_back(broker.bootstrap_servers, topic, expected=5, timeout=3)
    received = sorted(parse_event(record.value).event_id for record in records)
    assert received == sorted(event.event_id for event in before + after)

    monkeypatch.setenv("AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__SPOOL_DIR", str(config.spool_dir))
    assert spool_cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "0 event(s) waiting" in out
    assert f"1 event(s) the broker refused for good in {dead}" in out


class _FailedFuture:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> Any:
        raise self.error


class _Acknowledged:
    def get(self, timeout: float | None = None) -> Any:
        return None


class _RefusesTopicForOneEvent:
    """A producer whose broker answers TopicAuthorizationFailed for the event of task 'secret'."""

    def __init__(self, **config: Any) -> None:
        pass

    def send(self, topic: str, key: bytes | None = None, value: bytes | None = None) -> Any:
        from kafka.errors import TopicAuthorizationFailedError

        if value is not None and b'"secret"' in value:
            return _FailedFuture(TopicAuthorizationFailedError(topic))
        return _Acknowledged()

    def close(self, timeout: float | None = None) -> None:
        pass


def test_a_refusal_the_broker_answers_is_dead_lettered_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kafka

    monkeypatch.setattr(kafka, "KafkaProducer", _RefusesTopicForOneEvent)
    publisher = Publisher(listener_config(tmp_path / "spool", "127.0.0.1:9092"))
    events = [task_event(task_id="a"), task_event(task_id="secret"), task_event(task_id="b")]
    for event in events:
        publisher.spool.put(event)
    assert publisher.drain(timeout=5) == 2
    assert publisher.spool.count() == 0
    assert publisher.spool.dead_letter_count() == 1
    (reason,) = publisher.spool.dead_letter_directory.glob("*.reason.txt")
    assert "TopicAuthorizationFailed" in reason.read_text()


# --- a full spool -----------------------------------------------------------------------------


def test_a_full_spool_refuses_new_events_loudly_and_counts_them(
    broker: Broker,
    topic: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from dataclasses import replace

    config = replace(listener_config(tmp_path / "spool", closed_port_address(), topic), max_spool_events=3)
    down = Publisher(config)
    down.spool.mark_broker_unavailable()  # an outage: events only go to the spool
    events = [task_event(task_id=f"t{index}") for index in range(5)]
    with caplog.at_level("ERROR", logger="airstream"):
        for event in events:
            down.publish(event, inline=True)  # never raises

    assert spooled_ids(down.spool) == [event.event_id for event in events[:3]]  # the oldest are kept
    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert len(errors) == 2, "one ERROR per event not spooled"
    assert events[3].event_id in errors[0] and events[4].event_id in errors[1]
    assert "max_spool_events" in errors[1] and "NOT recorded" in errors[1]
    dropped = json.loads((config.spool_dir / ".dropped").read_text())
    assert dropped["count"] == 2
    assert events[4].event_id in dropped["last_event"]
    assert "max_spool_events" in dropped["last_reason"]

    monkeypatch.setenv("AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__TOPIC", topic)
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__SPOOL_DIR", str(config.spool_dir))
    monkeypatch.setenv("AIRFLOW__AIRSTREAM__MAX_SPOOL_EVENTS", "3")
    assert spool_cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "3 event(s) waiting" in out
    assert "2 event(s) NOT spooled because the spool was full" in out

    # The broker is back: what was kept goes out, and the limit lifts.
    assert spool_cli.main(["flush", "--timeout", "10"]) == 0
    later = task_event(task_id="later")
    up = Publisher(replace(config, bootstrap_servers=broker.bootstrap_servers))
    try:
        up.publish(later, inline=True)
    finally:
        up.close()
    records = read_back(broker.bootstrap_servers, topic, expected=4)
    assert sorted(parse_event(r.value).event_id for r in records) == sorted(
        event.event_id for event in [*events[:3], later]
    )
    assert json.loads((config.spool_dir / ".dropped").read_text())["count"] == 2  # kept for a person
