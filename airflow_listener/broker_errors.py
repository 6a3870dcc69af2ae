"""Why the listener could not reach the broker, in the words of its ``[airstream]`` settings.

kafka-python gives up on an unreachable, untrusting or unconvinced broker with one
"Unable to bootstrap" timeout; the reason (an untrusted certificate, refused SASL credentials,
a plain broker spoken to in TLS) is only logged, at WARNING, by ``kafka.net.manager``.
:func:`collect_connection_failures` keeps those reasons while a client connects, without letting
them into Airflow's logs when the listener has quieted the ``kafka`` logger, and
:func:`explain_connection_failure` names the setting to fix. Secrets never appear in the text.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

from airstream.airflow_listener.config import SECTION, ListenerConfig

_MANAGER_LOGGER = "kafka.net.manager"
_capturing = 0
_capture_lock = threading.Lock()
_saved: tuple[int, bool] = (logging.NOTSET, True)


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        self.errors.extend(arg for arg in args if isinstance(arg, BaseException))


@contextlib.contextmanager
def collect_connection_failures() -> Iterator[list[BaseException]]:
    """While the block runs, collect the exceptions kafka-python reports for failed connections."""
    global _capturing, _saved
    logger = logging.getLogger(_MANAGER_LOGGER)
    collector = _Collector()
    with _capture_lock:
        if _capturing == 0:
            _saved = (logger.level, logger.propagate)
            if not logger.isEnabledFor(logging.WARNING):  # quieted: collect, but keep it out of the logs
                logger.setLevel(logging.WARNING)
                logger.propagate = False
        _capturing += 1
        logger.addHandler(collector)
    try:
        yield collector.errors
    finally:
        with _capture_lock:
            logger.removeHandler(collector)
            _capturing -= 1
            if _capturing == 0:
                logger.setLevel(_saved[0])
                logger.propagate = _saved[1]


def explain_connection_failure(config: ListenerConfig, errors: list[BaseException]) -> str:
    """What to fix, given the reasons kafka-python logged for failed connections (may be empty)."""
    where = f"Kafka at {config.bootstrap_servers} (security_protocol={config.security_protocol})"
    errors = [error for error in errors if "Unable to bootstrap" not in str(error)] or errors  # the timeout, not a why
    reasons = [_describe(error) for error in errors]
    last = _redact(reasons[-1], config) if reasons else ""
    text = " ".join(reasons).upper()
    if "CERTIFICATE_VERIFY_FAILED" in text or ("MISMATCH" in text and "CERTIFICATE" in text):
        trusted = f"ssl_cafile={config.ssl_cafile}" if config.ssl_cafile else "the system's CAs (ssl_cafile is unset)"
        return (
            f"{where}: the broker's TLS certificate is not trusted by {trusted} ({last}); "
            f"set [{SECTION}] ssl_cafile to the CA that signed the broker's certificate"
        )
    if "CERTIFICATE_REQUIRED" in text:
        last = next(r for r in reasons if "CERTIFICATE_REQUIRED" in r.upper())
        return (
            f"{where}: the broker asks for a client certificate ({last}); set [{SECTION}] ssl_certfile and "
            "ssl_keyfile to a certificate the broker trusts and its key"
        )
    if "WRONG_VERSION_NUMBER" in text or "UNEXPECTED_EOF" in text or "RECORD_LAYER" in text:
        return (
            f"{where}: the TLS handshake failed ({last}); does the broker listen with TLS on that port? "
            f"check [{SECTION}] security_protocol and bootstrap_servers"
        )
    unreachable = any(word in text for word in _UNREACHABLE)
    sasl = reasons and config.security_protocol.startswith("SASL_") and not unreachable
    if sasl or any(_is_sasl_error(error) for error in errors):
        return (
            f"{where}: the broker did not accept the SASL login of user {config.sasl_username!r} with "
            f"sasl_mechanism={config.sasl_mechanism} ({last}); check [{SECTION}] sasl_username, sasl_password "
            "and sasl_mechanism"
        )
    if reasons:
        return f"{where} cannot be reached ({last}); check [{SECTION}] bootstrap_servers and the network"
    return f"{where} did not answer in time; check [{SECTION}] bootstrap_servers, the network and security_protocol"


_UNREACHABLE = ("CONNECTION REFUSED", "ECONNREFUSED", "ERRNO 111", "UNREACHABLE", "NAME OR SERVICE", "NODENAME")


def _describe(error: BaseException) -> str:
    if isinstance(error, KeyError):  # kafka-python's SCRAM client finds no server proof in a refusal
        return "the broker ended the SCRAM exchange without proof: wrong user or password"
    return str(error) or type(error).__name__


def _is_sasl_error(error: BaseException) -> bool:
    name = type(error).__name__
    return "Sasl" in name or "Authentication" in name or isinstance(error, KeyError)


def _redact(text: str, config: ListenerConfig) -> str:
    secret = config.sasl_password
    return text.replace(secret, "***") if secret else text
