"""Successful and refused SASL logins (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) on both sides: the
listener's producer and the consumer's ``KafkaEventSource``, with events going on into a Dagster
instance.

This Tansu build cannot admit a SASL user (``test_transport_security.py`` proves it), so the broker
is Tansu behind ``devstack.sasl.SaslFront``, which answers SaslHandshake and SaslAuthenticate as a
Kafka broker does and then passes the connection on; Tansu advertises the front's address, so
every connection a client opens logs in. The SCRAM server itself is checked against RFC 7677's
example exchange and against kafka-python's SCRAM client.
"""

from __future__ import annotations

import base64
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from airstream.airflow_listener.config import ListenerConfig
from airstream.airflow_listener.delivery import Publisher
from airstream.dagster_consumer import EventSourceUnavailable, KafkaEventSource
from devstack.figures import SensorDriver, count_figures, etl_observation_defs, load_successes
from devstack.sasl import (
    MECHANISMS,
    LoginRefused,
    PlainServer,
    SaslBroker,
    SaslFront,
    ScramServer,
    start_sasl_broker,
)

INSTANCE = "faults"
USERS = {"airflow": "listener-password-5520", "dagster": "consumer-password-8861"}
WRONG = "do-not-print-me-7431"


# --- the SCRAM and PLAIN servers alone ---------------------------------------------------------

RFC_7677 = {  # RFC 7677 section 3: user "user", password "pencil"
    "client_first": b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
    "server_first": b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "client_final": b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "server_final": b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
}


def rfc_7677_server(password: str) -> ScramServer:
    salt, nonce = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    return ScramServer("SCRAM-SHA-256", {"user": password}, salt=salt, nonce=nonce)


def test_the_scram_server_answers_rfc_7677s_example_exchange() -> None:
    server = rfc_7677_server("pencil")
    assert server.step(RFC_7677["client_first"]) == (RFC_7677["server_first"], False)
    assert server.step(RFC_7677["client_final"]) == (RFC_7677["server_final"], True)
    assert server.user == "user"


def test_the_scram_server_refuses_rfc_7677s_proof_for_another_password() -> None:
    server = rfc_7677_server("pencil2")
    server.step(RFC_7677["client_first"])
    with pytest.raises(LoginRefused, match="invalid credentials with SASL mechanism SCRAM-SHA-256"):
        server.step(RFC_7677["client_final"])
    assert server.user is None


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_kafka_pythons_scram_client_logs_in_and_checks_the_servers_signature(mechanism: str) -> None:
    from kafka.net.sasl.scram import ScramClient

    for password, admitted in (("right", True), ("wrong", False), ("right", True)):
        client, server = ScramClient("alice", password, mechanism), ScramServer(mechanism, {"alice": "right"})
        client.process_server_first_message(server.step(client.first_message())[0])
        if admitted:
            answer, done = server.step(client.final_message())
            client.process_server_final_message(answer)  # raises on a wrong server signature
            assert done and server.user == "alice"
        else:
            with pytest.raises(LoginRefused):
                server.step(client.final_message())
    # An unknown user is answered like a known one, then refused at the proof.
    client, server = ScramClient("mallory", "right", mechanism), ScramServer(mechanism, {"alice": "right"})
    client.process_server_first_message(server.step(client.first_message())[0])
    with pytest.raises(LoginRefused):
        server.step(client.final_message())


def test_the_plain_server_admits_the_right_password_only() -> None:
    users = {"alice": "right"}
    assert PlainServer(users).step(b"\0alice\0right") == (b"", True)
    assert PlainServer(users).step(b"alice\0alice\0right") == (b"", True)
    for token in (b"\0alice\0wrong", b"\0bob\0right", b"bob\0alice\0right", b"alice\0right"):
        with pytest.raises(LoginRefused):
            PlainServer(users).step(token)


# --- the front's wire protocol, by hand (kafka-python itself uses handshake v1, authenticate v2) ---


class Upstream:
    """A stand-in broker: accepts connections, counts them and keeps what arrives on the first."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.connections = 0
        self.received = b""
        self.done = threading.Event()  # the first connection has closed
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            if self.connections == 1:
                threading.Thread(target=self._receive, args=(connection,), daemon=True).start()

    def _receive(self, connection: socket.socket) -> None:
        with connection:
            while data := connection.recv(4096):
                self.received += data
        self.done.set()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.server.getsockname()[1])


def call(sock: socket.socket, key: int, version: int, body: bytes) -> bytes:
    """Send one request (header v1, client id ``t``) and return the response after its correlation id."""
    request = struct.pack(">hhih", key, version, 7, 1) + b"t" + body
    sock.sendall(struct.pack(">i", len(request)) + request)
    return frame(sock)[4:]


def frame(sock: socket.socket) -> bytes:
    size, data = struct.unpack(">i", sock.recv(4))[0], b""
    while len(data) < size:
        data += sock.recv(size - len(data))
    return data


def handshake(sock: socket.socket, version: int, mechanism: str) -> tuple[int, list[str]]:
    answer = call(sock, 17, version, struct.pack(">h", len(mechanism)) + mechanism.encode())
    error, count = struct.unpack(">hi", answer[:6])
    names, offset = [], 6
    for _ in range(count):
        length = struct.unpack(">h", answer[offset : offset + 2])[0]
        names.append(answer[offset + 2 : offset + 2 + length].decode())
        offset += 2 + length
    return error, names


def authenticate_v1(sock: socket.socket, token: bytes) -> tuple[int, str | None, bytes, int]:
    answer = call(sock, 36, 1, struct.pack(">i", len(token)) + token)
    error, length = struct.unpack(">hh", answer[:4])
    message = None if length < 0 else answer[4 : 4 + length].decode()
    offset = 4 + max(length, 0)
    size = struct.unpack(">i", answer[offset : offset + 4])[0]
    (lifetime,) = struct.unpack(">q", answer[offset + 4 + size :])
    return error, message, answer[offset + 4 : offset + 4 + size], lifetime


def test_the_front_answers_handshake_v0_v1_and_authenticate_v1_then_passes_bytes_on() -> None:
    from kafka.net.sasl.scram import ScramClient

    upstream = Upstream()
    with SaslFront({"alice": "right"}, upstream.address, mechanisms=("PLAIN", "SCRAM-SHA-256")) as front:
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:  # a mechanism not offered
            assert handshake(sock, 1, "SCRAM-SHA-512") == (33, ["PLAIN", "SCRAM-SHA-256"])
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:  # v1, wrong password
            assert handshake(sock, 1, "PLAIN") == (0, ["PLAIN", "SCRAM-SHA-256"])
            error, message, token, _ = authenticate_v1(sock, b"\0alice\0wrong")
            assert (error, token) == (58, b"") and message and "Invalid username or password" in message
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(1) == b"", "the front keeps a refused connection open"
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:  # v0 handshake, bare frames
            assert handshake(sock, 0, "SCRAM-SHA-256")[0] == 0
            client = ScramClient("alice", "right", "SCRAM-SHA-256")
            for send, receive in (
                (client.first_message, client.process_server_first_message),
                (client.final_message, client.process_server_final_message),
            ):
                token = send()
                sock.sendall(struct.pack(">i", len(token)) + token)
                receive(frame(sock))  # raises on a wrong server signature
            sock.sendall(b"after the login")
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:  # no login: closed
            call_frame = struct.pack(">hhih", 3, 1, 9, 1) + b"t"  # Metadata before any handshake
            sock.sendall(struct.pack(">i", len(call_frame)) + call_frame)
            assert sock.recv(1) == b"", "the front let a request through before a login"
        assert upstream.done.wait(5)
    upstream.server.close()
    assert upstream.received == b"after the login"
    assert upstream.connections == 1, "a connection without a login reached the broker"
    assert front.logins == {"PLAIN": 0, "SCRAM-SHA-256": 1} and front.refusals == 1


def test_the_front_answers_plain_in_authenticate_v1_with_a_session_lifetime() -> None:
    upstream = Upstream()
    with SaslFront({"alice": "right"}, upstream.address) as front:
        with socket.create_connection(("127.0.0.1", front.port), timeout=5) as sock:
            assert handshake(sock, 1, "PLAIN")[0] == 0
            assert authenticate_v1(sock, b"\0alice\0right") == (0, None, b"", 0)
        assert upstream.done.wait(5)
    upstream.server.close()
    assert front.logins["PLAIN"] == 1 and upstream.connections == 1


# --- logins against the broker, both sides -----------------------------------------------------


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    with start_sasl_broker(tmp_path_factory.mktemp("sasl-front"), USERS) as broker:
        yield broker


def sasl_front_of(broker: SaslBroker) -> SaslFront:
    assert broker.sasl_front is not None
    return broker.sasl_front


def listener(spool: Path, broker: SaslBroker, topic: str, mechanism: str, password: str, **tls: Any) -> Publisher:
    config = ListenerConfig(
        spool_dir=spool,
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        instance_name=INSTANCE,
        delivery_timeout=3.0,
        security_protocol=broker.security_protocol,
        sasl_mechanism=mechanism,
        sasl_username="airflow",
        sasl_password=password,
        **tls,
    )
    return Publisher(config)


def consumer_options(broker: SaslBroker, mechanism: str, password: str) -> dict[str, Any]:
    options = {
        "security_protocol": broker.security_protocol,
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "dagster",
        "sasl_plain_password": password,
    }
    if broker.certificates is not None:
        options["ssl_cafile"] = str(broker.certificates.ca_file)
    return options


def record_in_dagster(instance: DagsterInstance, broker: SaslBroker, topic: str, mechanism: str) -> SensorDriver:
    """The sensor reading ``topic`` with the consumer's right password, ticked to the topic's end."""
    options = consumer_options(broker, mechanism, USERS["dagster"])
    driver = SensorDriver(
        instance,
        etl_observation_defs(INSTANCE, broker.bootstrap_servers, topic, client_options=options),
        f"{INSTANCE}__airflow_event_sensor",
    )
    driver.tick_until_quiet()
    return driver


def delivery_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.endswith("delivery") and r.levelno == logging.WARNING]


@pytest.mark.integration
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_sasl_login_carries_events_from_the_listener_to_dagster(
    tmp_path: Path, sasl_broker: SaslBroker, dagster_instance: DagsterInstance, mechanism: str
) -> None:
    topic, sent = f"sasl-{mechanism.lower()}", load_successes(INSTANCE, 5)
    logins_before = sasl_front_of(sasl_broker).logins[mechanism]
    publisher = listener(tmp_path / "spool", sasl_broker, topic, mechanism, USERS["airflow"])
    try:
        for event in sent:
            publisher.publish(event, inline=True)
    finally:
        publisher.close()
    assert publisher.spool.count() == 0, f"the broker did not acknowledge the events sent with {mechanism}"
    after_listener = sasl_front_of(sasl_broker).logins[mechanism]

    driver = record_in_dagster(dagster_instance, sasl_broker, topic, mechanism)
    figures = count_figures([event.event_id for event in sent], driver.recorded_ids())
    print(f"{mechanism}: logins listener {after_listener - logins_before}, then consumer; {figures}")
    assert after_listener > logins_before, "the listener reached the broker without logging in"
    after_consumer = sasl_front_of(sasl_broker).logins[mechanism]
    assert after_consumer > after_listener, "the consumer reached the broker without logging in"
    assert figures.exactly_once, str(figures)
    assert figures.recorded == 5, str(figures)


@pytest.mark.integration
@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_wrong_password_names_the_broker_and_the_setting_and_events_wait_until_it_is_fixed(
    tmp_path: Path,
    sasl_broker: SaslBroker,
    dagster_instance: DagsterInstance,
    caplog: pytest.LogCaptureFixture,
    mechanism: str,
) -> None:
    topic, spool, sent = f"sasl-wrong-{mechanism.lower()}", tmp_path / "spool", load_successes(INSTANCE, 3)
    refusals_before = sasl_front_of(sasl_broker).refusals
    wrong = listener(spool, sasl_broker, topic, mechanism, WRONG)
    with caplog.at_level(logging.WARNING):
        for event in sent:
            wrong.publish(event, inline=True)
    wrong.close()
    warnings = delivery_warnings(caplog)
    assert wrong.spool.count() == 3, f"events not kept after a refused login; log: {warnings}"
    assert len(warnings) == 1, f"one warning per failed delivery, then the back-off: {warnings}"
    warning = warnings[0]
    assert sasl_broker.bootstrap_servers in warning, warning
    assert "sasl_password" in warning and f"sasl_mechanism={mechanism}" in warning, warning
    assert "Authentication failed" in warning, f"the broker's reason is not passed on: {warning}"
    assert sasl_front_of(sasl_broker).refusals > refusals_before

    source = KafkaEventSource(
        bootstrap_servers=sasl_broker.bootstrap_servers,
        topic=topic,
        connect_timeout_seconds=3,
        client_options=consumer_options(sasl_broker, mechanism, WRONG),
    )
    with caplog.at_level(logging.WARNING), pytest.raises(EventSourceUnavailable) as refused:
        source.read(None)
    message = str(refused.value)
    print(f"{mechanism}, wrong password:\nlistener: {warning}\nconsumer: {message}")
    assert sasl_broker.bootstrap_servers in message, message
    assert 'client_options["sasl_plain_username"], ["sasl_plain_password"]' in message, message
    assert f"sasl_mechanism={mechanism}" in message, message
    assert WRONG not in message and WRONG not in caplog.text, "the wrong password reached an error or the log"

    fixed = listener(spool, sasl_broker, topic, mechanism, USERS["airflow"])
    try:
        assert fixed.drain(timeout=10, ignore_backoff=True) == 3
    finally:
        fixed.close()
    assert fixed.spool.count() == 0
    driver = record_in_dagster(dagster_instance, sasl_broker, topic, mechanism)
    figures = count_figures([event.event_id for event in sent], driver.recorded_ids())
    print(f"after the password was fixed: {figures}")
    assert figures.exactly_once and not figures.lost, str(figures)


@pytest.mark.integration
def test_a_scram_login_over_tls_carries_events_from_the_listener_to_dagster(
    tmp_path: Path, dagster_instance: DagsterInstance
) -> None:
    mechanism, sent = "SCRAM-SHA-512", load_successes(INSTANCE, 4)
    with start_sasl_broker(tmp_path / "broker", USERS, tls=True) as broker:
        assert broker.security_protocol == "SASL_SSL" and broker.certificates is not None
        cafile = str(broker.certificates.ca_file)
        publisher = listener(tmp_path / "spool", broker, "sasl-ssl", mechanism, USERS["airflow"], ssl_cafile=cafile)
        try:
            for event in sent:
                publisher.publish(event, inline=True)
        finally:
            publisher.close()
        assert publisher.spool.count() == 0, "the SASL_SSL broker did not acknowledge the events"
        driver = record_in_dagster(dagster_instance, broker, "sasl-ssl", mechanism)
        logins = sasl_front_of(broker).logins[mechanism]
    figures = count_figures([event.event_id for event in sent], driver.recorded_ids())
    print(f"SASL_SSL with {mechanism}: {logins} logins; {figures}")
    assert logins >= 2, "the listener and the consumer did not both log in"
    assert figures.exactly_once, str(figures)
