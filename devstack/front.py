"""A front on loopback: accepts connections, lets a subclass vet each one (a TLS handshake, a SASL
login), then forwards its bytes to the broker behind it. The test broker's TLS and SASL fronts
(:mod:`devstack.tls`, :mod:`devstack.sasl`) share it, for what this Tansu build cannot serve itself."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import TypeVar

_Front = TypeVar("_Front", bound="LoopbackFront")


class LoopbackFront:
    """Accepts on ``127.0.0.1:port`` and runs :meth:`_serve` for each connection in a thread.

    :meth:`close` stops accepting and closes every connection it tracks (:meth:`_track`).
    """

    def __init__(self, upstream: tuple[str, int], port: int = 0, *, name: str) -> None:
        self._upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self._listener.getsockname()[1]
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, name=name, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _serve(self, client: socket.socket) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _drop(self, sock: socket.socket) -> None:
        # shutdown first: a close alone neither ends the other pump's recv nor tells the peer.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()
        with self._lock:
            self._sockets.discard(sock)

    def _forward(self, client: socket.socket, upstream: socket.socket) -> None:
        """Pass bytes both ways until either side hangs up, then close both."""
        for sock in (client, upstream):
            sock.settimeout(None)
            self._track(sock)
        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        self._pump(client, upstream)

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            self._drop(sock)

    def close(self) -> None:
        """Stop accepting and close every forwarded connection. Idempotent."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._drop(sock)

    def __enter__(self: _Front) -> _Front:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
