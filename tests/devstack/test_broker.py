"""The local broker launcher and the process manager behind the local stack."""

from __future__ import annotations

import signal
import sys
import time
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from devstack.broker import BOOTSTRAP_ENV, create_topic, start_broker
from devstack.processes import ManagedProcess, StackError, free_port


@pytest.mark.integration
def test_broker_round_trip(tmp_path: Path) -> None:
    started = time.monotonic()
    with start_broker(tmp_path) as broker:
        startup = time.monotonic() - started
        topic = f"devstack-{uuid.uuid4().hex[:8]}"
        create_topic(broker.bootstrap_servers, topic, partitions=3)
        create_topic(broker.bootstrap_servers, topic, partitions=3)  # exists already: no error

        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        try:
            for i in range(3):
                producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode()).get(timeout=10)
        finally:
            producer.close()

        consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False)
        try:
            partitions = consumer.partitions_for_topic(topic)
            assert partitions == {0, 1, 2}
            consumer.assign([TopicPartition(topic, p) for p in partitions])
            consumer.seek_to_beginning()
            got: dict[bytes, bytes] = {}
            deadline = time.monotonic() + 10
            while len(got) < 3 and time.monotonic() < deadline:
                for records in consumer.poll(timeout_ms=200).values():
                    got.update((r.key, r.value) for r in records)
        finally:
            consumer.close()
    assert got == {b"k0": b"v0", b"k1": b"v1", b"k2": b"v2"}
    if broker.kind == "tansu":
        assert startup < 5, f"tansu took {startup:.2f} s to start"


def test_external_broker_that_does_not_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BOOTSTRAP_ENV, f"127.0.0.1:{free_port()}")
    with pytest.raises(StackError, match=BOOTSTRAP_ENV):
        start_broker(tmp_path)


def _python(tmp_path: Path, name: str, code: str) -> ManagedProcess:
    return ManagedProcess.start(name, [sys.executable, "-c", code], log_path=tmp_path / f"{name}.log")


def test_stop_kills_a_process_that_ignores_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    with _python(tmp_path, "stubborn", code) as proc:
        proc.wait_until(lambda: "ready" in proc.log_tail().splitlines(), timeout=10, what="the handler")
        started = time.monotonic()
        proc.stop(timeout=0.5)
        assert time.monotonic() - started < 3
        assert not proc.is_alive()
        assert proc.returncode == -signal.SIGKILL
        proc.stop()  # idempotent


def test_child_obeys_sigterm_even_if_parent_ignores_it(tmp_path: Path) -> None:
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        proc = ManagedProcess.start("sleeper", ["sleep", "60"], log_path=tmp_path / "sleep.log")
    finally:
        signal.signal(signal.SIGTERM, previous)
    with proc:
        proc.stop(timeout=5)
        assert proc.returncode == -signal.SIGTERM


def test_wait_until_reports_early_exit_with_log_tail(tmp_path: Path) -> None:
    proc = _python(tmp_path, "crasher", "import sys; print('panic: address in use'); sys.exit(3)")
    with proc, pytest.raises(StackError) as info:
        proc.wait_until(lambda: False, timeout=10, what="the port to open")
    message = str(info.value)
    assert "crasher" in message
    assert "the port to open" in message
    assert "exited with code 3" in message
    assert "panic: address in use" in message


def test_wait_until_times_out(tmp_path: Path) -> None:
    with _python(tmp_path, "idle", "import time; time.sleep(60)") as proc, pytest.raises(StackError) as info:
        proc.wait_until(lambda: False, timeout=0.3, what="nothing")
    assert "timed out" in str(info.value)
    assert "idle" in str(info.value)


@pytest.mark.integration
def test_tansu_retries_when_its_port_is_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    import devstack.broker

    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    monkeypatch.setattr(devstack.broker, "_docker_available", lambda: False)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken, free_port()])
        monkeypatch.setattr(devstack.broker, "free_port", lambda: next(ports))
        with start_broker(tmp_path) as broker:
            assert broker.kind == "tansu"
            assert broker.bootstrap_servers != f"127.0.0.1:{taken}"
    assert (tmp_path / "tansu.log").read_text().count("$ ") == 2  # one failed launch, one retry
