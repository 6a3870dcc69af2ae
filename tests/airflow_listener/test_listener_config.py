"""ListenerConfig: defaults, conversion of the raw option strings, and clear errors (also when the
broker refuses the connection: which setting to fix)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airstream.airflow_listener.broker_errors import collect_connection_failures, explain_connection_failure
from airstream.airflow_listener.config import ListenerConfig, ListenerConfigError

HOME = Path("/opt/airflow-home")


def getter(options: dict[str, str]) -> Callable[[str], str | None]:
    return options.get


def build(**options: str) -> ListenerConfig:
    return ListenerConfig.from_options(getter(options), HOME)


def test_defaults() -> None:
    config = build()
    assert config.spool_dir == HOME / "airstream-spool"
    assert config.enabled is True
    assert config.bootstrap_servers == "localhost:9092"
    assert config.topic == "airflow.events"
    assert config.instance_name == "airflow"
    assert config.delivery_timeout == 5.0
    assert config.retry_backoff == 30.0
    assert config.security_protocol == "PLAINTEXT"
    assert config.sasl_mechanism is None


def test_empty_strings_count_as_unset() -> None:
    assert build(topic="", delivery_timeout="", enabled="") == build()


def test_type_conversion() -> None:
    config = build(
        enabled="False",
        delivery_timeout="2.5",
        retry_backoff=" 10 ",
        spool_dir="/var/spool/airstream",
        security_protocol="sasl_ssl",
        sasl_mechanism="scram-sha-512",
        sasl_username="svc",
        sasl_password="s3cret",
    )
    assert config.enabled is False
    assert config.delivery_timeout == 2.5
    assert config.retry_backoff == 10.0
    assert config.spool_dir == Path("/var/spool/airstream")
    assert config.security_protocol == "SASL_SSL"
    assert config.sasl_mechanism == "SCRAM-SHA-512"


@pytest.mark.parametrize("raw,expected", [("1", True), ("yes", True), ("On", True), ("0", False), ("off", False)])
def test_boolean_spellings(raw: str, expected: bool) -> None:
    assert build(enabled=raw).enabled is expected


def test_spool_dir_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert build(spool_dir="~/spool").spool_dir == tmp_path / "spool"


@pytest.mark.parametrize(
    "options,words",
    [
        ({"enabled": "maybe"}, ["enabled", "maybe", "boolean"]),
        ({"delivery_timeout": "soon"}, ["delivery_timeout", "soon", "number"]),
        ({"retry_backoff": "1m"}, ["retry_backoff", "1m", "number"]),
        ({"delivery_timeout": "0"}, ["delivery_timeout", "(0, 8]"]),
        ({"delivery_timeout": "30"}, ["delivery_timeout", "(0, 8]"]),
        ({"delivery_timeout": "-1"}, ["delivery_timeout"]),
        ({"security_protocol": "TLS"}, ["security_protocol", "TLS", "SASL_SSL"]),
        ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p"}, ["sasl_mechanism"]),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "GSSAPI"}, ["sasl_mechanism", "GSSAPI"]),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN"}, ["sasl_username", "sasl_password"]),
        (
            {"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"},
            ["sasl_username", "sasl_password"],
        ),
        ({"bootstrap_servers": "   "}, ["bootstrap_servers", "empty"]),
        ({"topic": "  "}, ["topic", "empty"]),
        ({"instance_name": " "}, ["instance_name", "letters, digits and underscores"]),
        ({"instance_name": "prod-eu"}, ["instance_name", "prod-eu", "letters, digits and underscores"]),
    ],
    ids=lambda value: "-".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else None,
)
def test_bad_options_raise_a_clear_error(options: dict[str, str], words: list[str]) -> None:
    with pytest.raises(ListenerConfigError) as info:
        build(**options)
    message = str(info.value)
    assert "[airstream]" in message
    for word in words:
        assert word in message


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ListenerConfigError, ValueError)


def test_delivery_timeout_bounds_are_inclusive_of_8() -> None:
    assert build(delivery_timeout="8").delivery_timeout == 8.0


def test_negative_retry_backoff_is_rejected() -> None:
    with pytest.raises(ListenerConfigError, match="retry_backoff"):
        build(retry_backoff="-5")


def test_kafka_client_options_plaintext() -> None:
    options = build(bootstrap_servers=" a:9092, b:9093 ,,c:9094").kafka_client_options()
    assert options == {"bootstrap_servers": ["a:9092", "b:9093", "c:9094"], "security_protocol": "PLAINTEXT"}


def test_kafka_client_options_maps_sasl_and_ssl_names() -> None:
    config = build(
        bootstrap_servers="kafka-1:9096,kafka-2:9096",
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username="svc-airflow",
        sasl_password="hunter2-very-secret",
        ssl_cafile="/etc/ca.pem",
        ssl_certfile="/etc/client.pem",
        ssl_keyfile="/etc/client.key",
    )
    assert config.kafka_client_options() == {
        "bootstrap_servers": ["kafka-1:9096", "kafka-2:9096"],
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "svc-airflow",
        "sasl_plain_password": "hunter2-very-secret",
        "ssl_cafile": "/etc/ca.pem",
        "ssl_certfile": "/etc/client.pem",
        "ssl_keyfile": "/etc/client.key",
    }


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"ssl_cafile": "/etc/ca.pem"}, ["ssl_cafile", "security_protocol=PLAINTEXT", "SSL"]),
        (
            {
                "security_protocol": "SASL_PLAINTEXT",
                "ssl_cafile": "/etc/ca.pem",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "a",
                "sasl_password": "b",
            },
            ["ssl_cafile", "SASL_SSL"],
        ),
        ({"security_protocol": "SSL", "sasl_username": "a", "sasl_password": "secret-1"}, ["sasl_username", "SASL_"]),
    ],
)
def test_tls_or_sasl_options_the_protocol_would_ignore_are_refused(options: dict[str, str], words: list[str]) -> None:
    with pytest.raises(ListenerConfigError) as refused:
        build(**options)
    assert all(word in str(refused.value) for word in words), str(refused.value)
    assert "secret-1" not in str(refused.value)


def test_password_is_not_in_repr() -> None:
    config = build(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="svc-airflow",
        sasl_password="hunter2-very-secret",
    )
    assert "hunter2-very-secret" not in repr(config)
    assert "hunter2-very-secret" not in str(config)
    assert "svc-airflow" in repr(config)  # the repr is still useful


@pytest.mark.parametrize("option", ["retry_backoff", "delivery_timeout"])
@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "NaN", "Infinity"])
def test_non_finite_seconds_are_refused_naming_the_option(option: str, raw: str) -> None:
    with pytest.raises(ListenerConfigError) as info:
        build(**{option: raw})
    assert f"[airstream] {option}=" in str(info.value)
    assert "finite" in str(info.value)


@pytest.mark.parametrize("raw,disabled", [("False", True), (" off ", True), ("0", True), ("True", False), ("", False)])
def test_disabled_in_reads_only_the_enabled_option(raw: str, disabled: bool) -> None:
    assert ListenerConfig.disabled_in(getter({"enabled": raw, "delivery_timeout": "nan"})) is disabled
    assert ListenerConfig.disabled_in(getter({})) is False
    assert ListenerConfig.disabled_in(getter({"enabled": "maybe"})) is False  # kept, not lost


def test_max_spool_events() -> None:
    assert build().max_spool_events == 100_000
    assert build(max_spool_events=" 500 ").max_spool_events == 500


@pytest.mark.parametrize(
    "raw,words", [("0", ["positive"]), ("-3", ["positive"]), ("1.5", ["whole number"]), ("lots", ["whole number"])]
)
def test_bad_max_spool_events_is_refused_naming_the_option(raw: str, words: list[str]) -> None:
    with pytest.raises(ListenerConfigError) as info:
        build(max_spool_events=raw)
    assert "[airstream] max_spool_events=" in str(info.value)
    for word in words:
        assert word in str(info.value)


# --- naming the setting to fix when the broker refuses the connection (broker_errors) --------------


def _secured(**options: Any) -> ListenerConfig:
    base: dict[str, Any] = {"spool_dir": Path("/tmp/spool"), "bootstrap_servers": "broker-1:9093"}
    return ListenerConfig(**(base | options))


def test_an_untrusted_certificate_names_ssl_cafile() -> None:
    config = _secured(security_protocol="SSL", ssl_cafile="/etc/kafka-ca.pem")
    error = OSError("Handshake failed: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    text = explain_connection_failure(config, [error])
    assert "Kafka at broker-1:9093" in text and "[airstream] ssl_cafile" in text and "/etc/kafka-ca.pem" in text


def test_a_refused_login_names_the_sasl_settings_and_never_the_password() -> None:
    config = _secured(
        security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512", sasl_username="airflow", sasl_password="hunter2"
    )
    text = explain_connection_failure(config, [KeyError("v"), RuntimeError("login hunter2 refused")])
    assert "broker-1:9093" in text and "sasl_username, sasl_password and sasl_mechanism" in text
    assert "'airflow'" in text and "hunter2" not in text


def test_a_closed_port_names_bootstrap_servers_even_with_sasl() -> None:
    config = _secured(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="a", sasl_password="b")
    text = explain_connection_failure(config, [ConnectionError("[Errno 111] Connection refused")])
    assert "cannot be reached" in text and "[airstream] bootstrap_servers" in text and "sasl" not in text


def test_no_reason_at_all_still_names_what_to_check() -> None:
    text = explain_connection_failure(_secured(), [])
    assert "broker-1:9093" in text and "bootstrap_servers" in text and "security_protocol" in text


def test_connection_failures_are_collected_without_reaching_quieted_logs(caplog: pytest.LogCaptureFixture) -> None:
    kafka_logger, manager = logging.getLogger("kafka"), logging.getLogger("kafka.net.manager")
    saved = kafka_logger.level
    kafka_logger.setLevel(logging.CRITICAL)  # as quiet_kafka_client_logs leaves it
    try:
        with caplog.at_level(logging.DEBUG, logger="airstream"), collect_connection_failures() as found:
            problem = ConnectionError("refused")
            manager.warning("Bootstrap connection to %s failed: %s (backoff %.2f secs)", "bootstrap-0", problem, 0.1)
        assert found == [problem]
        assert "refused" not in caplog.text, "a quieted kafka logger must stay quiet"
        assert manager.level == logging.NOTSET and manager.propagate, "the logger's settings are restored"
    finally:
        kafka_logger.setLevel(saved)
