"""Why the consumer could not reach the broker, in the words of ``KafkaEventSource``'s options.

kafka-python ends a failed connection with one "Unable to bootstrap" timeout and logs the reason
(an untrusted certificate, refused SASL credentials, TLS spoken to a plain port) at WARNING on
``kafka.net.manager``. :func:`connection_failures` keeps those reasons while the consumer
connects and :func:`explain` names the option to fix; a password never appears in the text.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

_lock = threading.Lock()
_active = 0
_restore: tuple[int, bool] = (logging.NOTSET, True)


class _Reasons(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.found: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if isinstance(record.args, tuple):
            self.found += [arg for arg in record.args if isinstance(arg, BaseException)]


@contextlib.contextmanager
def connection_failures() -> Iterator[list[BaseException]]:
    """Collect the exceptions kafka-python logs for failed connections while the block runs. A
    ``kafka.net.manager`` logger quieter than WARNING is opened meanwhile, but only to this
    collector (its records do not propagate), and restored when the last collector ends."""
    global _active, _restore
    logger = logging.getLogger("kafka.net.manager")
    reasons = _Reasons()
    with _lock:
        if _active == 0:
            _restore = (logger.level, logger.propagate)
            if not logger.isEnabledFor(logging.WARNING):
                logger.setLevel(logging.WARNING)
                logger.propagate = False
        _active += 1
        logger.addHandler(reasons)
    try:
        yield reasons.found
    finally:
        with _lock:
            logger.removeHandler(reasons)
            _active -= 1
            if _active == 0:
                logger.setLevel(_restore[0])
                logger.propagate = _restore[1]


def explain(servers: Sequence[str], options: Mapping[str, Any], found: Sequence[BaseException]) -> str:
    """The message for a consumer that could not connect: the broker, the reason, the option to fix."""
    protocol = str(options.get("security_protocol", "PLAINTEXT"))
    where = f"Kafka at {','.join(servers)} (security_protocol={protocol})"
    found = [error for error in found if "Unable to bootstrap" not in str(error)] or found  # the timeout, not a why
    reasons = [
        "the broker ended the SCRAM exchange without proof: wrong user or password"
        if isinstance(e, KeyError)
        else str(e)
        for e in found
    ]
    last = reasons[-1] if reasons else "no answer before connect_timeout_seconds"
    password = options.get("sasl_plain_password")
    if password:
        last = last.replace(str(password), "***")
    text = " ".join(reasons).upper()
    if "CERTIFICATE_VERIFY_FAILED" in text:
        cafile = options.get("ssl_cafile")
        trusted = (
            f'client_options["ssl_cafile"]={cafile!r}' if cafile else 'the system CAs (no client_options["ssl_cafile"])'
        )
        return (
            f"cannot connect to {where}: its TLS certificate is not trusted by {trusted} ({last}). "
            'Set client_options["ssl_cafile"] to the CA that signed the broker\'s certificate.'
        )
    if "CERTIFICATE_REQUIRED" in text:
        last = next(r for r in reasons if "CERTIFICATE_REQUIRED" in r.upper())
        return (
            f"cannot connect to {where}: the broker asks for a client certificate ({last}). Set "
            'client_options["ssl_certfile"] and ["ssl_keyfile"] to a certificate the broker trusts and its key.'
        )
    if "WRONG_VERSION_NUMBER" in text or "UNEXPECTED_EOF" in text:
        return (
            f"cannot connect to {where}: the TLS handshake failed ({last}). Does the broker speak TLS on that "
            'port? Check client_options["security_protocol"] and bootstrap_servers.'
        )
    if (
        reasons
        and protocol.startswith("SASL_")
        and not any(w in text for w in ("CONNECTION REFUSED", "ERRNO 111", "UNREACHABLE"))
    ):
        return (
            f"cannot connect to {where}: the broker did not accept the SASL login of user "
            f"{options.get('sasl_plain_username')!r} with sasl_mechanism={options.get('sasl_mechanism')} ({last}). "
            'Check client_options["sasl_plain_username"], ["sasl_plain_password"] and ["sasl_mechanism"].'
        )
    return (
        f"cannot connect to {where}: {last}. Check the bootstrap servers, the network, and the security options "
        "(client_options)."
    )
