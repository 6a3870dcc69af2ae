"""Listener configuration, read from Airflow's ``[airstream]`` section.

Every option can also be set as an environment variable, as Airflow does for all sections:
``AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS=broker:9092``.

=====================  ==========================  ==============================================
option                 default                     meaning
=====================  ==========================  ==============================================
enabled                True                        publish events at all
bootstrap_servers      localhost:9092              Kafka bootstrap servers, comma separated
topic                  airflow.events              topic the events go to
instance_name          airflow                     names this Airflow in every event (letters,
                                                   digits, underscores; at most 64)
delivery_timeout       5.0                         seconds a task process waits for the broker
retry_backoff          30.0                        seconds to skip the broker after it failed
spool_dir              $AIRFLOW_HOME/airstream-spool  where undelivered events wait, durably
max_spool_events       100000                      events the spool holds at most (see below)
security_protocol      PLAINTEXT                   PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
sasl_mechanism         (none)                      PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
sasl_username          (none)
sasl_password          (none)
ssl_cafile             (none)                      CA bundle to verify the brokers
ssl_certfile           (none)                      client certificate (mutual TLS)
ssl_keyfile            (none)                      client key (mutual TLS)
=====================  ==========================  ==============================================

The ``ssl_*`` options need ``security_protocol`` SSL or SASL_SSL, the ``sasl_*`` ones SASL_PLAINTEXT or
SASL_SSL (and then all three): a configuration that sets options its protocol would silently ignore
is refused, naming them.

When the spool holds ``max_spool_events`` events (the broker has been away long enough for that),
new events are not written: each one is logged at ERROR in the Airflow log (the task's log for a
task event) and counted in ``SPOOL_DIR/.dropped`` (the count, the last event and why), which
``airstream-spool status`` shows. Events already spooled are kept and delivered first, in order;
the limit lifts as soon as delivery empties the spool. The REST gap repair on the Dagster side
recovers the terminal states of what was not spooled. The count is re-read from disk every 100
events a process writes, so several busy processes may together pass the limit by a few hundred.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airstream.schemas import InvalidInstanceName, validate_instance_name

SECTION = "airstream"

_SECURITY_PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
_SASL_MECHANISMS = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}


class ListenerConfigError(ValueError):
    """An ``[airstream]`` option has a value the listener cannot use."""


@dataclass(frozen=True)
class ListenerConfig:
    """Validated listener settings. Build with :meth:`from_airflow` inside Airflow."""

    spool_dir: Path
    enabled: bool = True
    bootstrap_servers: str = "localhost:9092"
    topic: str = "airflow.events"
    instance_name: str = "airflow"
    delivery_timeout: float = 5.0
    retry_backoff: float = 30.0
    max_spool_events: int = 100_000
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ListenerConfigError(f"[{SECTION}] bootstrap_servers is empty: set it to host:port[,host:port]")
        if not self.topic.strip():
            raise ListenerConfigError(f"[{SECTION}] topic is empty: set the Kafka topic events go to")
        try:
            validate_instance_name(self.instance_name)
        except InvalidInstanceName as error:
            raise ListenerConfigError(f"[{SECTION}] instance_name: {error}") from None
        for name in ("delivery_timeout", "retry_backoff"):
            if not math.isfinite(getattr(self, name)):
                raise ListenerConfigError(
                    f"[{SECTION}] {name}={getattr(self, name)} is not a finite number of seconds: set a number"
                )
        if not 0 < self.delivery_timeout <= 8:
            raise ListenerConfigError(
                f"[{SECTION}] delivery_timeout={self.delivery_timeout} must be in (0, 8] seconds: connecting and "
                "sending may each take that long, and Airflow kills a task process 20 s after it finishes"
            )
        if self.retry_backoff <= 0:
            raise ListenerConfigError(
                f"[{SECTION}] retry_backoff={self.retry_backoff} must be a positive number of seconds"
            )
        if self.max_spool_events < 1:
            raise ListenerConfigError(
                f"[{SECTION}] max_spool_events={self.max_spool_events} must be a positive number of events"
            )
        if self.security_protocol not in _SECURITY_PROTOCOLS:
            raise ListenerConfigError(
                f"[{SECTION}] security_protocol={self.security_protocol!r} is not one of {sorted(_SECURITY_PROTOCOLS)}"
            )
        tls_files = [name for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile") if getattr(self, name)]
        if tls_files and not self.security_protocol.endswith("SSL"):
            raise ListenerConfigError(
                f"[{SECTION}] {', '.join(tls_files)} set, but security_protocol={self.security_protocol} does not use "
                "TLS: set security_protocol to SSL (or SASL_SSL), or remove them"
            )
        sasl_options = [name for name in ("sasl_mechanism", "sasl_username", "sasl_password") if getattr(self, name)]
        if sasl_options and not self.security_protocol.startswith("SASL_"):
            raise ListenerConfigError(
                f"[{SECTION}] {', '.join(sasl_options)} set, but security_protocol={self.security_protocol} does not "
                "log in: set security_protocol to SASL_SSL (or SASL_PLAINTEXT), or remove them"
            )
        if self.security_protocol.startswith("SASL_"):
            if self.sasl_mechanism not in _SASL_MECHANISMS:
                raise ListenerConfigError(
                    f"[{SECTION}] security_protocol={self.security_protocol} needs sasl_mechanism, one of "
                    f"{sorted(_SASL_MECHANISMS)} (got {self.sasl_mechanism!r})"
                )
            if not (self.sasl_username and self.sasl_password):
                raise ListenerConfigError(
                    f"[{SECTION}] security_protocol={self.security_protocol} needs sasl_username and sasl_password"
                )

    @classmethod
    def from_options(cls, get: Callable[[str], str | None], airflow_home: Path) -> ListenerConfig:
        """Build from a lookup of option name → raw string (``None`` when unset)."""
        values: dict[str, Any] = {}
        for name, kind in _OPTION_TYPES.items():
            raw = get(name)
            if raw is None or raw == "":
                continue
            values[name] = _convert(name, raw, kind)
        values.setdefault("spool_dir", airflow_home / "airstream-spool")
        return cls(**values)

    @classmethod
    def fallback_options(cls, get: Callable[[str], str | None], airflow_home: Path) -> ListenerConfig:
        """A configuration that is always valid, for spooling while the real one is not: the
        configured spool directory and instance name where those are usable, defaults elsewhere."""
        spool_dir = (get("spool_dir") or "").strip()
        instance_name = (get("instance_name") or "").strip()
        try:
            validate_instance_name(instance_name)
        except InvalidInstanceName:
            instance_name = "airflow"
        return cls(
            spool_dir=Path(spool_dir).expanduser() if spool_dir else airflow_home / "airstream-spool",
            instance_name=instance_name,
        )

    @staticmethod
    def disabled_in(get: Callable[[str], str | None]) -> bool:
        """Whether ``enabled`` says False, whatever the other options say (an ``enabled`` that is
        not a boolean does not disable: events are kept rather than lost)."""
        return (get("enabled") or "").strip().lower() in _FALSE

    @classmethod
    def disabled_in_airflow(cls) -> bool:
        """:meth:`disabled_in` for the running Airflow's configuration."""
        return cls.disabled_in(_airflow_options()[0])

    @classmethod
    def from_airflow(cls) -> ListenerConfig:
        """Read the ``[airstream]`` section (and ``AIRFLOW__AIRSTREAM__*``) of the running Airflow."""
        return cls.from_options(*_airflow_options())

    @classmethod
    def fallback_from_airflow(cls) -> ListenerConfig:
        """:meth:`fallback_options` from the running Airflow's configuration."""
        return cls.fallback_options(*_airflow_options())

    def kafka_client_options(self) -> dict[str, Any]:
        """The security and connection options in kafka-python's names."""
        options: dict[str, Any] = {
            "bootstrap_servers": [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()],
            "security_protocol": self.security_protocol,
        }
        optional = {
            "sasl_mechanism": self.sasl_mechanism,
            "sasl_plain_username": self.sasl_username,
            "sasl_plain_password": self.sasl_password,
            "ssl_cafile": self.ssl_cafile,
            "ssl_certfile": self.ssl_certfile,
            "ssl_keyfile": self.ssl_keyfile,
        }
        options.update({key: value for key, value in optional.items() if value is not None})
        return options


def _airflow_options() -> tuple[Callable[[str], str | None], Path]:
    from airflow.configuration import conf

    def get(name: str) -> str | None:
        value = conf.get(SECTION, name, fallback=None)
        return None if value is None else str(value)

    home = os.environ.get("AIRFLOW_HOME") or conf.get("core", "airflow_home", fallback="~/airflow")
    return get, Path(str(home)).expanduser()


_OPTION_TYPES: dict[str, type] = {
    "enabled": bool,
    "bootstrap_servers": str,
    "topic": str,
    "instance_name": str,
    "delivery_timeout": float,
    "retry_backoff": float,
    "spool_dir": Path,
    "max_spool_events": int,
    "security_protocol": str,
    "sasl_mechanism": str,
    "sasl_username": str,
    "sasl_password": str,
    "ssl_cafile": str,
    "ssl_certfile": str,
    "ssl_keyfile": str,
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(name: str, raw: str, kind: type) -> Any:
    raw = raw.strip()
    if kind is bool:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise ListenerConfigError(f"[{SECTION}] {name}={raw!r} is not a boolean: use True or False")
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ListenerConfigError(f"[{SECTION}] {name}={raw!r} is not a number of seconds") from None
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ListenerConfigError(f"[{SECTION}] {name}={raw!r} is not a whole number") from None
    if kind is Path:
        return Path(raw).expanduser()
    if name in {"security_protocol", "sasl_mechanism"}:
        return raw.upper()
    return raw
