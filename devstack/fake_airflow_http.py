"""A tiny HTTP server that answers like Airflow's REST API v2 (Airflow 3) or v1 (Airflow 2), for the
REST client's unit tests: real HTTP on a free port of 127.0.0.1, no Airflow.

It holds DAGs, runs and task instances in memory, pages every list like Airflow (``limit``/``offset``,
``page_offset``/``page_limit``, ``total_entries``), checks credentials (a JWT from ``POST /auth/token``
on v2, basic auth on v1), and records every request (method, path, JSON body) for assertions.
``fail_next`` makes the next matching requests answer an error, ``expire_tokens`` refuses every
token issued so far, ``token_lifetime`` sets the ``exp`` of new tokens.

Example::

    with FakeAirflowHttp("v2", dags=12) as fake:
        client = AirflowRestClient(TokenAuthBackend(fake.url, "admin", "admin"), page_limit=5)
        assert len(client.list_dags()) == 12
        assert fake.count("GET", "/api/v2/dags") == 3
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["FakeAirflowHttp", "RecordedRequest", "make_jwt"]

USERNAME = "admin"
PASSWORD = "admin"


def make_jwt(claims: dict[str, Any]) -> str:
    """An unsigned-looking JWT with these claims (the fake checks tokens by value, not signature)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS512', 'typ': 'JWT'})}.{part(claims)}.c2ln"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    headers: dict[str, str]


@dataclass
class _Failure:
    status: int
    remaining: int
    method: str | None
    path: str | None
    delay: float = 0.0


@dataclass
class FakeAirflowHttp:
    """A fake Airflow web server speaking REST API ``api_version`` ("v2" or "v1")."""

    api_version: str = "v2"
    dags: int = 3
    airflow_version: str = ""
    token_lifetime: float = 3600.0
    requests: list[RecordedRequest] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    task_instances: list[dict[str, Any]] = field(default_factory=list)
    run_states: dict[str, list[str]] = field(default_factory=dict)  # run_id -> states to answer in turn
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        self.airflow_version = self.airflow_version or ("3.3.2" if self.api_version == "v2" else "2.11.2")
        self._lock = threading.Lock()
        self._valid_tokens: set[str] = set()
        self._failures: list[_Failure] = []
        self._server: ThreadingHTTPServer | None = None
        self.dag_ids = [f"dag_{index:03d}" for index in range(self.dags)]

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> FakeAirflowHttp:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ------------------------------------------------------------------ test controls

    def fail_next(
        self, count: int = 1, *, status: int = 503, method: str | None = None, path: str | None = None, delay: float = 0
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` (after ``delay`` seconds)."""
        with self._lock:
            self._failures.append(_Failure(status, count, method, path, delay))

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on (as after a restart with a new secret)."""
        with self._lock:
            self._valid_tokens.clear()

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return sum(1 for request in self.requests if request.method == method and request.path == path)

    def bodies(self, method: str, path: str) -> list[Any]:
        with self._lock:
            return [request.body for request in self.requests if request.method == method and request.path == path]

    def add_run(self, dag_id: str, run_id: str, state: str = "success", **extra: Any) -> dict[str, Any]:
        run = {"dag_id": dag_id, "dag_run_id": run_id, "state": state, "run_type": "manual", **extra}
        self.runs.append(run)
        return run

    def add_task_instance(self, dag_id: str, run_id: str, task_id: str, state: str = "success", **extra: Any) -> None:
        self.task_instances.append(
            {
                "dag_id": dag_id,
                "dag_run_id": run_id,
                "task_id": task_id,
                "state": state,
                "map_index": -1,
                "try_number": 1,
                **extra,
            }
        )

    # ------------------------------------------------------------------ answering

    def answer(self, method: str, raw_path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        with self._lock:
            self.requests.append(RecordedRequest(method, path, query, body, headers))
            failure = next(
                (
                    failure
                    for failure in self._failures
                    if failure.remaining > 0 and failure.method in (None, method) and failure.path in (None, path)
                ),
                None,
            )
            if failure is not None:
                failure.remaining -= 1
        if failure is not None:
            time.sleep(failure.delay)
            return failure.status, {"detail": "injected failure"}
        prefix = f"/api/{self.api_version}"
        if path == "/auth/token" and method == "POST":
            return self._token(body)
        if path in ("/api/v1/version", "/api/v2/version"):
            if path.startswith(prefix):
                return 200, {"version": self.airflow_version, "git_version": None}
            return 404, {"detail": "Not Found"}
        if not path.startswith(prefix + "/"):
            return 404, {"detail": "Not Found"}
        refused = self._check_auth(headers)
        if refused is not None:
            return refused
        return self._route(method, path[len(prefix) :], query, body or {})

    def _token(self, body: Any) -> tuple[int, Any]:
        if self.api_version != "v2":
            return 404, "<html>Airflow 404</html>"
        if not isinstance(body, dict) or body.get("username") != USERNAME or body.get("password") != PASSWORD:
            return 401, {"detail": "Invalid credentials"}
        with self._lock:
            self.tokens_issued += 1
            now = time.time()
            token = make_jwt({"sub": USERNAME, "iat": now, "exp": now + self.token_lifetime, "n": self.tokens_issued})
            self._valid_tokens.add(token)
        return 201, {"access_token": token}

    def _check_auth(self, headers: dict[str, str]) -> tuple[int, Any] | None:
        authorization = headers.get("authorization", "")
        if self.api_version == "v2":
            if not authorization.startswith("Bearer "):
                return 401, {"detail": "Not authenticated"}
            token = authorization[len("Bearer ") :]
            with self._lock:
                valid = token in self._valid_tokens
            if not valid:
                return 403, {"detail": "Invalid JWT token"}
            claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            if claims["exp"] < time.time():
                return 401, {"detail": "Token Expired"}
            return None
        expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        if authorization != expected:
            return 403, {"detail": None, "status": 403, "title": "Forbidden"}
        return None

    def _route(self, method: str, path: str, query: dict[str, list[str]], body: dict[str, Any]) -> tuple[int, Any]:
        segments = path.strip("/").split("/")
        if method == "GET" and path == "/dags":
            dags = [self._dag(dag_id) for dag_id in self.dag_ids]
            return 200, _page(dags, "dags", int(query.get("limit", ["100"])[0]), int(query.get("offset", ["0"])[0]))
        if method == "GET" and len(segments) == 3 and segments[0] == "dags" and segments[2] == "tasks":
            if segments[1] not in self.dag_ids:
                return 404, {"detail": f"DAG {segments[1]} not found"}
            tasks = [
                {"task_id": "extract", "operator_name": "PythonOperator", "downstream_task_ids": ["load"]},
                {"task_id": "load", "class_ref": {"class_name": "SQLOperator"}, "downstream_task_ids": []},
            ]
            return 200, {"tasks": tasks, "total_entries": 2}
        if method == "GET" and path in ("/assets", "/datasets"):
            return 200, _page(
                self._assets(), path.strip("/"), int(query.get("limit", ["100"])[0]), int(query.get("offset", ["0"])[0])
            )
        if method == "POST" and path == "/dags/~/dagRuns/list":
            runs = [
                run
                for run in self.runs
                if (not body.get("dag_ids") or run["dag_id"] in body["dag_ids"])
                and (not body.get("states") or run["state"] in body["states"])
            ]
            return 200, _page(runs, "dag_runs", body.get("page_limit", 100), body.get("page_offset", 0))
        if method == "POST" and path == "/dags/~/dagRuns/~/taskInstances/list":
            if self.api_version == "v1" and "order_by" in body:
                return 400, {"detail": "{'order_by': ['Unknown field.']}"}
            tis = [
                ti
                for ti in self.task_instances
                if (not body.get("dag_ids") or ti["dag_id"] in body["dag_ids"])
                and (not body.get("dag_run_ids") or ti["dag_run_id"] in body["dag_run_ids"])
                and (not body.get("state") or ti["state"] in body["state"])
            ]
            return 200, _page(tis, "task_instances", body.get("page_limit", 100), body.get("page_offset", 0))
        if method == "POST" and len(segments) == 3 and segments[0] == "dags" and segments[2] == "dagRuns":
            return self._trigger(segments[1], body)
        if method == "GET" and len(segments) == 4 and segments[0] == "dags" and segments[2] == "dagRuns":
            return self._get_run(segments[1], segments[3])
        return 404, {"detail": f"no route for {method} {path}"}

    def _dag(self, dag_id: str) -> dict[str, Any]:
        common = {"dag_id": dag_id, "description": f"about {dag_id}", "owners": ["data"], "is_paused": False}
        common["tags"] = [{"name": "nightly"}]
        common["fileloc"] = f"/dags/{dag_id}.py"
        if self.api_version == "v2":
            return {**common, "timetable_summary": "0 3 * * *", "is_stale": False}
        return {**common, "schedule_interval": {"__type": "CronExpression", "value": "0 3 * * *"}, "is_active": True}

    def _assets(self) -> list[dict[str, Any]]:
        asset = {
            "uri": "s3://warehouse/orders",
            "producing_tasks": [{"dag_id": "dag_000", "task_id": "load"}],
        }
        consumers = [{"dag_id": "dag_001"}]
        if self.api_version == "v2":
            return [{**asset, "name": "orders", "scheduled_dags": consumers}]
        return [{**asset, "consuming_dags": consumers}]

    def _trigger(self, dag_id: str, body: dict[str, Any]) -> tuple[int, Any]:
        if dag_id not in self.dag_ids:
            return 404, {"detail": f"DAG with dag_id: '{dag_id}' not found"}
        if self.api_version == "v2" and "logical_date" not in body:
            return 422, {"detail": [{"type": "missing", "loc": ["body", "logical_date"]}]}
        run_id = f"manual__{len(self.runs)}"
        self.add_run(dag_id, run_id, "queued", conf=body.get("conf"), logical_date=body.get("logical_date"))
        return 200, {"dag_id": dag_id, "dag_run_id": run_id, "state": "queued"}

    def _get_run(self, dag_id: str, run_id: str) -> tuple[int, Any]:
        for run in self.runs:
            if run["dag_id"] == dag_id and run["dag_run_id"] == run_id:
                with self._lock:
                    states = self.run_states.get(run_id)
                    if states:
                        run["state"] = states.pop(0) if len(states) > 1 else states[0]
                return 200, run
        return 404, {"detail": f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found"}


def _page(items: list[dict[str, Any]], key: str, limit: int, offset: int) -> dict[str, Any]:
    return {key: items[offset : offset + min(limit, 100)], "total_entries": len(items)}


def _handler(fake: FakeAirflowHttp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {name.lower(): value for name, value in self.headers.items()}
            status, payload = fake.answer(self.command, self.path, headers, body)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html" if isinstance(payload, str) else "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


def iter_paths(fake: FakeAirflowHttp) -> Iterator[str]:
    """Every request as ``METHOD path``, in order (for failure messages)."""
    for request in list(fake.requests):
        yield f"{request.method} {request.path}"
