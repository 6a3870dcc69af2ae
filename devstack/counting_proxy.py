"""A counting HTTP reverse proxy for tests: put it in front of an Airflow API server, point a client
at :attr:`CountingProxy.url`, and read how many requests of each kind went through.

Requests are counted per ``(method, path pattern)``: the path without its query string, with DAG,
run, task and asset identifiers replaced by placeholders, so
``GET /api/v2/dags/etl/dagRuns/manual__1`` counts as ``("GET", "/api/v2/dags/{dag_id}/dagRuns/{run_id}")``
while the batch calls keep their literal ``~`` (``POST /api/v2/dags/~/dagRuns/list``).

Example::

    with CountingProxy("http://127.0.0.1:8080") as proxy:
        requests.get(f"{proxy.url}/api/v2/version")
        assert proxy.count("GET", "/api/v2/version") == 1
        with proxy.counting() as window:   # counts of one stretch of a test
            ...
        print(window.counts)

The proxy can also answer the next requests itself with an error (:meth:`CountingProxy.fail_next`),
which lets a test see a client retry against a real server. It runs in a background thread of the
test process; :meth:`CountingProxy.stop` (or leaving the ``with`` block) closes it.
"""

from __future__ import annotations

import http.client
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

__all__ = ["CountWindow", "CountingProxy", "path_pattern"]

# The segment after each of these names an object; the placeholder replaces it unless it is "~" or a verb.
_PLACEHOLDERS = {
    "dags": "{dag_id}",
    "dagRuns": "{run_id}",
    "taskInstances": "{task_id}",
    "tasks": "{task_id}",
    "dagSources": "{file_token}",
    "assets": "{asset_id}",
    "datasets": "{uri}",
}
_LITERAL_SEGMENTS = {"~", "list", "events", "queuedEvents", "aliases", "tries", "clear", "details"}
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
_INTEGER = re.compile(r"^-?\d+$")


def path_pattern(path: str) -> str:
    """The pattern a request path is counted under (query string dropped, identifiers replaced).

    >>> path_pattern("/api/v1/dags/etl/dagRuns/manual__2026/taskInstances/load/3?x=1")
    '/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}'
    >>> path_pattern("/api/v2/dags/~/dagRuns/~/taskInstances/list")
    '/api/v2/dags/~/dagRuns/~/taskInstances/list'
    """
    segments = urlsplit(path).path.split("/")
    out: list[str] = []
    previous = ""
    for segment in segments:
        if previous in _PLACEHOLDERS and segment and segment not in _LITERAL_SEGMENTS:
            out.append(_PLACEHOLDERS[previous])
        elif previous == "{task_id}" and _INTEGER.match(segment):
            out.append("{map_index}")
        else:
            out.append(segment)
        previous = out[-1] if out[-1].startswith("{") else segment
    return "/".join(out)


@dataclass
class CountWindow:
    """The requests counted while a :meth:`CountingProxy.counting` block ran (filled when it ends)."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, method: str, pattern: str) -> int:
        return self.counts[(method.upper(), pattern)]


@dataclass
class _Failure:
    status: int
    remaining: int
    method: str | None
    pattern: str | None


class CountingProxy:
    """A threaded reverse proxy on a free port of 127.0.0.1 in front of ``upstream`` (``http://host:port``).

    Thread-safe: counts may be read while requests go through. Every request is counted, including
    those answered by an injected failure.
    """

    def __init__(self, upstream: str, *, timeout: float = 60.0) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"CountingProxy needs an http://host:port upstream, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port or 80
        self._timeout = timeout
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()
        self._log: list[tuple[str, str]] = []
        self._statuses: list[tuple[str, str, int]] = []
        self._failures: list[_Failure] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> CountingProxy:
        """Listen on a free port and serve in a daemon thread; returns ``self``."""
        if self._server is not None:
            return self
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="counting-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the port. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> CountingProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The proxy's base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("the counting proxy is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------------ counts

    @property
    def counts(self) -> Counter[tuple[str, str]]:
        """A copy of the counts so far, keyed by ``(METHOD, pattern)``."""
        with self._lock:
            return Counter(self._counts)

    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request so far as ``(METHOD, path with query)``, in arrival order (a copy)."""
        with self._lock:
            return list(self._log)

    @property
    def statuses(self) -> list[tuple[str, str, int]]:
        """Every answered request as ``(METHOD, pattern, status)``, in answer order (a copy)."""
        with self._lock:
            return list(self._statuses)

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def count(self, method: str, pattern: str) -> int:
        """How many ``method`` requests matched ``pattern`` so far."""
        with self._lock:
            return self._counts[(method.upper(), pattern)]

    def reset(self) -> None:
        """Forget the counts and the request log (injected failures stay)."""
        with self._lock:
            self._counts.clear()
            self._log.clear()
            self._statuses.clear()

    @contextmanager
    def counting(self) -> Iterator[CountWindow]:
        """Count the requests made inside the block only, whatever else counted before.

        Other threads' requests in the same stretch count too: use it where the test is the only client.
        """
        window = CountWindow()
        before = self.counts
        try:
            yield window
        finally:
            window.counts = self.counts - before

    # ------------------------------------------------------------------ failure injection

    def fail_next(
        self, count: int = 1, *, status: int = 503, method: str | None = None, pattern: str | None = None
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` instead of forwarding them.

        ``method`` and ``pattern`` (see :func:`path_pattern`) narrow which requests fail; ``None`` matches any.
        """
        with self._lock:
            self._failures.append(_Failure(status, count, method.upper() if method else None, pattern))

    def _record(self, method: str, path: str) -> int | None:
        """Count a request; returns the status to fail it with, if an injected failure applies."""
        pattern = path_pattern(path)
        with self._lock:
            self._counts[(method, pattern)] += 1
            self._log.append((method, path))
            for failure in self._failures:
                if failure.remaining > 0 and failure.method in (None, method) and failure.pattern in (None, pattern):
                    failure.remaining -= 1
                    return failure.status
            self._failures = [failure for failure in self._failures if failure.remaining > 0]
        return None

    def _answered(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._statuses.append((method, path_pattern(path), status))

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(self._upstream_host, self._upstream_port, timeout=self._timeout)
        try:
            forwarded = {name: value for name, value in headers if name.lower() not in _HOP_BY_HOP}
            forwarded["Host"] = f"{self._upstream_host}:{self._upstream_port}"
            connection.request(method, path, body=body, headers=forwarded)
            response = connection.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        finally:
            connection.close()


def _handler_for(proxy: CountingProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            injected = proxy._record(self.command, self.path)
            if injected is not None:
                self._reply(injected, "Injected by CountingProxy", [("Content-Type", "application/json")], b"{}")
                return
            try:
                status, reason, headers, data = proxy._forward(
                    self.command, self.path, list(self.headers.items()), body
                )
            except OSError as exc:
                self._reply(502, "Bad Gateway", [("Content-Type", "text/plain")], f"upstream error: {exc}".encode())
                return
            self._reply(status, reason, headers, data)

        def _reply(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
            proxy._answered(self.command, self.path, status)
            self.send_response(status, reason)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = do_OPTIONS = _proxy

        def log_message(self, format: str, *args: object) -> None:  # quiet: tests read the counts instead
            pass

    return Handler
