"""What KafkaEventSource says when the broker refuses the connection: the broker, the reason
kafka-python logged, the client_options key to fix, never the password."""

from __future__ import annotations

import logging

import pytest

from airstream.dagster_consumer.sources.kafka_errors import connection_failures, explain

SERVERS = ["broker-1:9093", "broker-2:9093"]


def test_an_untrusted_certificate_names_ssl_cafile() -> None:
    options = {"security_protocol": "SSL", "ssl_cafile": "/etc/ca.pem"}
    text = explain(SERVERS, options, [OSError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")])
    assert "broker-1:9093,broker-2:9093" in text and 'client_options["ssl_cafile"]' in text and "/etc/ca.pem" in text


def test_a_missing_client_certificate_names_ssl_certfile() -> None:
    found = [OSError("EOF occurred"), OSError("[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert certificate required")]
    text = explain(SERVERS, {"security_protocol": "SSL"}, found)
    assert 'client_options["ssl_certfile"]' in text and "CERTIFICATE_REQUIRED" in text


def test_a_refused_login_names_the_sasl_keys_and_never_the_password() -> None:
    options = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "dagster",
        "sasl_plain_password": "hunter2",
    }
    text = explain(SERVERS, options, [KeyError("v"), RuntimeError("login for hunter2 refused")])
    assert "'dagster'" in text and '["sasl_plain_password"]' in text and "hunter2" not in text


def test_a_closed_port_with_sasl_is_not_blamed_on_the_login() -> None:
    options = {"security_protocol": "SASL_PLAINTEXT", "sasl_plain_username": "dagster"}
    text = explain(SERVERS, options, [ConnectionError("[Errno 111] Connection refused")])
    assert "Connection refused" in text and "SASL login" not in text and "bootstrap servers" in text


def test_no_reason_still_says_what_to_check() -> None:
    text = explain(SERVERS, {}, [])
    assert "PLAINTEXT" in text and "client_options" in text and "bootstrap servers" in text


def test_reasons_are_collected_and_a_quiet_logger_stays_quiet(caplog: pytest.LogCaptureFixture) -> None:
    kafka_logger, manager = logging.getLogger("kafka"), logging.getLogger("kafka.net.manager")
    saved = kafka_logger.level
    kafka_logger.setLevel(logging.CRITICAL)
    try:
        with caplog.at_level(logging.DEBUG, logger="airstream"), connection_failures() as found:
            problem = ConnectionError("refused")
            manager.warning("Bootstrap connection to %s failed: %s (backoff %.2f secs)", "bootstrap-0", problem, 0.1)
        assert found == [problem]
        assert "refused" not in caplog.text
        assert manager.level == logging.NOTSET and manager.propagate
    finally:
        kafka_logger.setLevel(saved)
