"""One REST client for Airflow 3 (REST API v2) and Airflow 2.10+ (REST API v1).

:class:`AirflowRestClient` implements :class:`~airstream.dagster_consumer.rest.records.AirflowRestApi`.
It asks the server which API it speaks (``GET /api/v2/version``, then ``/api/v1/version``) once,
and reads both dialects into the same records, so nothing else branches on the Airflow version.

- One :class:`requests.Session` per client (from the auth backend), reused for every call.
- A timeout on every request.
- Retries with exponential backoff on connection errors and 429/500/502/503/504, by urllib3's
  ``Retry`` on the session's adapter: reads (``GET``) and the batch ``.../list`` searches (a
  ``POST`` that changes nothing) are retried; triggering a run is not (it is retried only when
  the connection was never made, so a run is never started twice).
- Every list pages through all results, 100 a page (Airflow's cap), with offset/limit and
  ``total_entries``. DAG runs and task instances come from the batch searches
  (``POST /dags/~/dagRuns/list``, ``POST /dags/~/dagRuns/~/taskInstances/list``), so a sweep
  costs one call per 100 results whatever the number of DAGs.

Example::

    from airstream.dagster_consumer.rest import AirflowRestClient, TokenAuthBackend

    client = AirflowRestClient(TokenAuthBackend("http://localhost:8080", "admin", "admin"))
    client.server_info()            # ServerInfo(airflow_version='3.3.2', api_version='v2')
    run_id = client.trigger_dag("etl", conf={"full_refresh": True})
    client.wait_for_run_completion("etl", run_id, timeout=600)   # "success" or "failed"
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from airstream.dagster_consumer.rest.auth import (
    AirflowAuthBackend,
    BasicAuthBackend,
    BearerTokenAuthBackend,
    TokenAuthBackend,
    normalize_webserver_url,
)
from airstream.dagster_consumer.rest.errors import (
    AirflowApiError,
    AirflowApiVersionError,
    AirflowAuthenticationError,
    AirflowRestError,
    AirflowRunTimeout,
    AirflowUnreachable,
)
from airstream.dagster_consumer.rest.records import (
    AirflowAssetRecord,
    DagRecord,
    DagRunRecord,
    ServerInfo,
    TaskInstanceRecord,
    TaskRecord,
)

__all__ = ["FINISHED_RUN_STATES", "PAGE_LIMIT", "AirflowRestClient"]

PAGE_LIMIT = 100
"""The largest page Airflow serves (``[api] maximum_page_limit``)."""
FINISHED_RUN_STATES = frozenset({"success", "failed"})
"""The DAG-run states :meth:`AirflowRestClient.wait_for_run_completion` stops at."""
RETRY_STATUSES = (429, 500, 502, 503, 504)
ApiVersion = Literal["v1", "v2"]


class AirflowRestClient:
    """A client of one Airflow web server's REST API, v1 or v2 (found by asking the server).

    Args:
        auth_backend: how to reach and authenticate (:class:`TokenAuthBackend` for Airflow 3,
            :class:`BasicAuthBackend` for Airflow 2, or your own :class:`AirflowAuthBackend`).
        api_version: ``None`` (default) asks the server; ``"v1"`` or ``"v2"`` insists on one and
            raises :class:`AirflowApiVersionError` (saying which the server speaks) if it is not there.
        timeout: seconds per request (connect and read).
        retries: how many times a failed request is retried (connection errors, 429, 500/502/503/504;
            a ``Retry-After`` header is obeyed).
        backoff_factor: the retry wait grows as ``backoff_factor * 2 ** (retry - 1)`` seconds.
        page_limit: results per page, at most 100.

    Thread-safe for concurrent calls (requests' session and the cached dialect are shared).
    """

    def __init__(
        self,
        auth_backend: AirflowAuthBackend,
        *,
        api_version: ApiVersion | None = None,
        timeout: float = 30.0,
        retries: int = 3,
        backoff_factor: float = 0.5,
        page_limit: int = PAGE_LIMIT,
    ) -> None:
        if not isinstance(auth_backend, AirflowAuthBackend):
            raise TypeError(
                f"AirflowRestClient needs an AirflowAuthBackend (TokenAuthBackend, BasicAuthBackend, ...), "
                f"got {type(auth_backend).__name__}"
            )
        if api_version not in (None, "v1", "v2"):
            raise ValueError(f"api_version must be None (ask the server), 'v1' or 'v2', got {api_version!r}")
        if not 1 <= page_limit <= PAGE_LIMIT:
            raise ValueError(f"page_limit must be between 1 and {PAGE_LIMIT}, got {page_limit}")
        self.auth_backend = auth_backend
        self.webserver_url = normalize_webserver_url(auth_backend.get_webserver_url())
        self.timeout = timeout
        self.retries = retries
        self.backoff_factor = backoff_factor
        self.page_limit = page_limit
        self._requested_version = api_version
        self._lock = threading.Lock()
        self._session: requests.Session | None = None
        self._server_info: ServerInfo | None = None

    def __repr__(self) -> str:
        return f"AirflowRestClient({self.webserver_url!r}, auth={self.auth_backend.describe()})"

    # ------------------------------------------------------------------ session and dialect

    @property
    def session(self) -> requests.Session:
        """The one session of this client: the backend's, with retrying adapters for the web server."""
        with self._lock:
            if self._session is None:
                self._session = self._build_session()
            return self._session

    def _build_session(self) -> requests.Session:
        session = self.auth_backend.get_session()
        reads = Retry(
            total=self.retries,
            connect=self.retries,
            read=self.retries,
            status=self.retries,
            other=0,
            backoff_factor=self.backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        # The batch searches are POSTs that change nothing: retried like reads. requests picks the
        # adapter with the longest matching prefix, so only ".../dags/~/..." gets this one.
        searches = reads.new(allowed_methods=frozenset({"GET", "HEAD", "OPTIONS", "POST"}))
        session.mount(f"{self.webserver_url}/", HTTPAdapter(max_retries=reads))
        for version in ("v1", "v2"):
            session.mount(f"{self.webserver_url}/api/{version}/dags/~/", HTTPAdapter(max_retries=searches))
        return session

    def server_info(self) -> ServerInfo:
        """The Airflow version and REST API version, asked once and cached."""
        with self._lock:
            cached = self._server_info
        if cached is not None:
            return cached
        info = self._detect()
        with self._lock:
            self._server_info = info
        return info

    @property
    def api_version(self) -> ApiVersion:
        """``"v2"`` (Airflow 3) or ``"v1"`` (Airflow 2)."""
        return "v2" if self.server_info().api_version == "v2" else "v1"

    def _detect(self) -> ServerInfo:
        order: tuple[ApiVersion, ...] = ("v2", "v1") if self._requested_version != "v1" else ("v1", "v2")
        answers: dict[str, requests.Response] = {}
        for version in order:
            response = self._send("GET", f"/api/{version}/version")
            answers[version] = response
            if response.status_code == 200:
                found = ServerInfo(airflow_version=str(_json(response).get("version", "")), api_version=version)
                if self._requested_version not in (None, version):
                    raise self._wrong_version(self._requested_version, found, answers)
                return found
            if response.status_code in (401, 403):  # the version endpoint wants auth: the API is there
                if self._requested_version not in (None, version):
                    raise self._wrong_version(self._requested_version, ServerInfo("", version), answers)
                return ServerInfo(airflow_version="", api_version=version)
            if response.status_code != 404:
                self._raise_for_status(response, "GET", f"/api/{version}/version")
        raise AirflowApiVersionError(
            f"no Airflow REST API at {self.webserver_url}: GET /api/v2/version and /api/v1/version both answered 404. "
            "webserver_url must be the base URL of the Airflow UI (what you open in a browser), without /api/..."
        )

    def _wrong_version(self, requested: str, found: ServerInfo, answers: Mapping[str, requests.Response]) -> Exception:
        status = answers[requested].status_code if requested in answers else 404
        if found.api_version == "v2":
            return AirflowApiVersionError(
                f"Airflow at {self.webserver_url} answers {status} on /api/{requested}: it is Airflow 3 "
                f"({found.airflow_version or 'REST API v2'}), which removed REST API v1. "
                "Leave api_version unset (or use 'v2') and authenticate with TokenAuthBackend."
            )
        return AirflowApiVersionError(
            f"Airflow at {self.webserver_url} answers {status} on /api/{requested}: it is Airflow 2 "
            f"({found.airflow_version or 'REST API v1'}), which has REST API v1 only. "
            "Leave api_version unset (or use 'v1') and authenticate with BasicAuthBackend."
        )

    # ------------------------------------------------------------------ the AirflowRestApi calls

    def list_dags(self) -> list[DagRecord]:
        """Every DAG Airflow knows (active ones; paged)."""
        v2 = self.api_version == "v2"
        return [_dag_v2(item) if v2 else _dag_v1(item) for item in self._get_all("/dags", "dags")]

    def list_tasks(self, dag_id: str) -> list[TaskRecord]:
        """The tasks of one DAG as Airflow last parsed it (one call; this endpoint is not paged)."""
        payload = self._get(f"/dags/{_segment(dag_id)}/tasks")
        return [_task(dag_id, item) for item in payload.get("tasks", [])]

    def list_assets(self) -> list[AirflowAssetRecord]:
        """Every Airflow asset (``/api/v2/assets``; datasets, ``/api/v1/datasets``, on Airflow 2), with
        the tasks that produce it and the DAGs it schedules."""
        if self.api_version == "v2":
            return [_asset(item, consumers="scheduled_dags") for item in self._get_all("/assets", "assets")]
        return [_asset(item, consumers="consuming_dags") for item in self._get_all("/datasets", "datasets")]

    def list_dag_runs(
        self,
        *,
        dag_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        end_date_gte: datetime | None = None,
        limit: int | None = None,
    ) -> list[DagRunRecord]:
        """DAG runs of all DAGs (or ``dag_ids``), oldest first, from the batch search: one call per
        100 runs whatever the number of DAGs. ``limit`` stops after that many runs. An empty
        ``dag_ids`` or ``states`` selects nothing (Airflow would read it as no filter)."""
        if _selects_nothing(dag_ids, states):
            return []
        body: dict[str, Any] = {"order_by": "id"}
        if dag_ids is not None:
            body["dag_ids"] = list(dag_ids)
        if states is not None:
            body["states"] = list(states)
        if end_date_gte is not None:
            body["end_date_gte"] = _iso(end_date_gte)
        items = self._post_all("/dags/~/dagRuns/list", "dag_runs", body, limit=limit)
        return [_dag_run(item) for item in items]

    def list_task_instances(
        self,
        *,
        dag_ids: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        end_date_gte: datetime | None = None,
    ) -> list[TaskInstanceRecord]:
        """Task instances (their current tries) across DAGs and runs, from the batch search: one call
        per 100 task instances whatever the number of DAGs or runs. An empty ``dag_ids``,
        ``run_ids`` or ``states`` selects nothing (Airflow would read it as no filter)."""
        if _selects_nothing(dag_ids, run_ids, states):
            return []
        body: dict[str, Any] = {}
        if self.api_version == "v2":
            body["order_by"] = "id"  # REST API v1 has no order_by here (and refuses unknown fields)
        if dag_ids is not None:
            body["dag_ids"] = list(dag_ids)
        if run_ids is not None:
            body["dag_run_ids"] = list(run_ids)
        if states is not None:
            body["state"] = list(states)
        if end_date_gte is not None:
            body["end_date_gte"] = _iso(end_date_gte)
        items = self._post_all("/dags/~/dagRuns/~/taskInstances/list", "task_instances", body)
        return [_task_instance(item) for item in items]

    def get_dag_run(self, dag_id: str, run_id: str) -> DagRunRecord:
        """One DAG run; :class:`AirflowApiError` (status 404) if there is none."""
        return _dag_run(self._get(f"/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}"))

    def trigger_dag(
        self, dag_id: str, *, conf: dict[str, object] | None = None, logical_date: datetime | None = None
    ) -> str:
        """Start a run of ``dag_id`` and return its run id (it does not wait: see :meth:`wait_for_run_completion`).

        Args:
            conf: the run's ``conf`` (``dag_run.conf`` in the tasks).
            logical_date: the run's logical date (a naive datetime is taken as UTC). ``None``: on
                Airflow 3, a run without a logical date; on Airflow 2, now.

        Never retried once the request reached Airflow, so a run is started at most once.
        """
        body: dict[str, Any] = {"conf": dict(conf or {})}
        if self.api_version == "v2":
            body["logical_date"] = _iso(logical_date) if logical_date is not None else None  # required, may be null
        elif logical_date is not None:
            body["logical_date"] = _iso(logical_date)
        payload = self._request("POST", self._api(f"/dags/{_segment(dag_id)}/dagRuns"), json=body)
        return str(payload["dag_run_id"])

    # ------------------------------------------------------------------ run state helpers (Airlift's names)

    def get_run_state(self, dag_id: str, run_id: str) -> str:
        """The state of a DAG run: ``queued``, ``running``, ``success`` or ``failed``."""
        return self.get_dag_run(dag_id, run_id).state

    def wait_for_run_completion(
        self, dag_id: str, run_id: str, *, timeout: float = 3600.0, poll_interval: float = 5.0
    ) -> str:
        """Poll the run every ``poll_interval`` seconds until it is finished; returns ``success`` or ``failed``.

        Raises :class:`AirflowRunTimeout` (naming the run and the timeout) if it is not finished
        within ``timeout`` seconds. A failed run is returned, not raised: the caller decides.
        """
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be positive, got {poll_interval}")
        deadline = time.monotonic() + timeout
        while True:
            state = self.get_run_state(dag_id, run_id)
            if state in FINISHED_RUN_STATES:
                return state
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AirflowRunTimeout(dag_id, run_id, timeout, state)
            time.sleep(min(poll_interval, remaining))

    def close(self) -> None:
        """Close the session's connections (the client opens a new session if used again)."""
        with self._lock:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    def __enter__(self) -> AirflowRestClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP

    def _api(self, path: str) -> str:
        return f"/api/{self.api_version}{path}"

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        return self._request("GET", self._api(path), params=params or None)

    def _get_all(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of a paged GET list (``limit``/``offset`` in the query)."""
        return self._all_pages(lambda offset, size: self._get(path, limit=size, offset=offset), key)

    def _post_all(self, path: str, key: str, body: dict[str, Any], *, limit: int | None = None) -> list[dict[str, Any]]:
        """Every item of a paged batch search (``page_offset``/``page_limit`` in the body)."""
        return self._all_pages(
            lambda offset, size: self._request(
                "POST", self._api(path), json={**body, "page_offset": offset, "page_limit": size}
            ),
            key,
            limit=limit,
        )

    def _all_pages(
        self, fetch: Callable[[int, int], dict[str, Any]], key: str, *, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Fetch pages (offset, size) until a short page, ``total_entries``, or ``limit`` items."""
        items: list[dict[str, Any]] = []
        while limit is None or len(items) < limit:
            size = self.page_limit if limit is None else min(self.page_limit, limit - len(items))
            page = fetch(len(items), size)
            batch = list(page.get(key) or [])
            items += batch
            if len(batch) < size or len(items) >= int(page.get("total_entries", len(items))):
                break
        return items

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        response = self._send(method, path, params=params, json=json)
        self._raise_for_status(response, method, path)
        payload = _json(response)
        if not isinstance(payload, dict):
            raise AirflowApiError(
                f"{method} {self.webserver_url}{path} answered {response.status_code} with no JSON object",
                status_code=response.status_code,
                method=method,
                path=path,
            )
        return payload

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        url = f"{self.webserver_url}{path}"
        try:
            return self.session.request(method, url, params=params, json=json, timeout=self.timeout)
        except AirflowRestError:
            raise
        except requests.ReadTimeout as exc:
            if method == "POST" and "/~/" not in path:  # a trigger: sent, not retried, maybe done
                raise AirflowUnreachable(
                    f"Airflow at {self.webserver_url} did not answer {method} {path} within {self.timeout:g} s: "
                    f"{_reason(exc)}. The request reached Airflow and may have taken effect (a run may have "
                    "started): look for it (list_dag_runs) before sending it again."
                ) from None
            raise AirflowUnreachable(
                f"no answer from Airflow at {self.webserver_url} ({method} {path}) after {self.retries} retries: "
                f"{_reason(exc)}. Check that Airflow's web/API server is healthy, or raise timeout."
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise AirflowUnreachable(
                f"no answer from Airflow at {self.webserver_url} ({method} {path}) after {self.retries} retries: "
                f"{_reason(exc)}. Check webserver_url and that Airflow's web/API server runs and is reachable."
            ) from None
        except requests.RequestException as exc:
            raise AirflowRestError(f"{method} {url} failed: {_reason(exc)}") from None

    def _raise_for_status(self, response: requests.Response, method: str, path: str) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _detail(response)
        where = f"{method} {path}"
        if status in (401, 403):
            raise AirflowAuthenticationError(self._auth_advice(status, where, detail))
        message = f"Airflow at {self.webserver_url} answered {status} to {where}"
        if detail:
            message += f": {detail}"
        if status == 404:
            message += " (check the DAG id, run id or task id; a DAG must be parsed before it can be triggered)"
        elif status == 409:
            message += " (a run with this run id or logical date already exists)"
        elif status >= 500:
            message += f" after {self.retries} retries (Airflow failed: see its API server log)"
        raise AirflowApiError(message, status_code=status, method=method, path=path, detail=detail)

    def _auth_advice(self, status: int, where: str, detail: str | None) -> str:
        backend = self.auth_backend
        who = backend.describe()
        base = f"Airflow at {self.webserver_url} answered {status} to {where} for {who}"
        if detail:
            base += f" ({detail})"
        version = self._server_info.api_version if self._server_info else None
        if isinstance(backend, BasicAuthBackend) and version == "v2" and status == 401:
            return (
                f"{base}: this is Airflow 3, whose REST API v2 rejects basic auth. Use "
                f"TokenAuthBackend({self.webserver_url!r}, username={backend.username!r}, password=...), "
                "which gets a JWT from POST /auth/token."
            )
        if isinstance(backend, BasicAuthBackend) and status == 403:
            return (
                f"{base}: wrong username or password for user {backend.username!r}, or the user lacks the "
                "permission (Airflow 2 answers 403 for both). Check the credentials and the user's role, and "
                "that [api] auth_backends includes airflow.api.auth.backend.basic_auth."
            )
        if isinstance(backend, TokenAuthBackend):
            return (
                f"{base}: the token was refused even after renewing it once; check that user "
                f"{backend.username!r} may do this (its role) and that the API server's clock and JWT "
                "secret are stable."
            )
        if isinstance(backend, BearerTokenAuthBackend):
            return (
                f"{base}: the bearer token is expired, revoked or not issued for this Airflow. Get a new one, "
                "or use TokenAuthBackend to have airstream renew tokens itself."
            )
        return f"{base}: check the credentials {type(backend).__name__} provides and the user's permissions."


# ---------------------------------------------------------------------- reading answers into records


def _selects_nothing(*filters: Sequence[str] | None) -> bool:
    return any(selection is not None and len(selection) == 0 for selection in filters)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(response: requests.Response) -> str | None:
    payload = _json(response)
    if isinstance(payload, dict):
        for key in ("detail", "title", "error", "message"):
            value = payload.get(key)
            if value:
                return value if isinstance(value, str) else str(value)[:500]
        return None
    text = response.text.strip()
    return text[:200] if text and not text.startswith("<") else None


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests error, short (urllib3 nests several)."""
    text = str(exc)
    marker = "Caused by "
    if marker in text:
        text = text.split(marker, 1)[1].rstrip(")")
    return f"{type(exc).__name__}: {text[:300]}"


def _segment(value: str) -> str:
    return quote(value, safe="")


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).isoformat()


def _datetime(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _names(items: Any) -> tuple[str, ...]:
    return tuple(str(item["name"]) if isinstance(item, dict) else str(item) for item in items or ())


def _dag_v2(item: Mapping[str, Any]) -> DagRecord:
    summary = item.get("timetable_summary")
    schedule = "asset" if summary == "Asset" else (str(summary) if summary else None)
    stale = item.get("is_stale")
    return DagRecord(
        dag_id=str(item["dag_id"]),
        description=item.get("description"),
        owners=tuple(item.get("owners") or ()),
        tags=_names(item.get("tags")),
        schedule=schedule,
        fileloc=item.get("fileloc"),
        is_paused=item.get("is_paused"),
        is_active=None if stale is None else not stale,
    )


def _dag_v1(item: Mapping[str, Any]) -> DagRecord:
    interval = item.get("schedule_interval")
    schedule: str | None = None
    if isinstance(interval, dict):
        if interval.get("__type") == "TimeDelta":
            schedule = f"timedelta(days={interval.get('days', 0)}, seconds={interval.get('seconds', 0)})"
        elif interval.get("value") == "Dataset":
            schedule = "dataset"
        elif interval.get("value"):
            schedule = str(interval["value"])
    return DagRecord(
        dag_id=str(item["dag_id"]),
        description=item.get("description"),
        owners=tuple(item.get("owners") or ()),
        tags=_names(item.get("tags")),
        schedule=schedule,
        fileloc=item.get("fileloc"),
        is_paused=item.get("is_paused"),
        is_active=item.get("is_active"),
    )


def _task(dag_id: str, item: Mapping[str, Any]) -> TaskRecord:
    class_ref = item.get("class_ref") or {}
    operator = item.get("operator_name") or class_ref.get("class_name")
    return TaskRecord(
        dag_id=dag_id,
        task_id=str(item["task_id"]),
        operator=operator,
        downstream_task_ids=tuple(sorted(item.get("downstream_task_ids") or ())),
    )


def _asset(item: Mapping[str, Any], *, consumers: str) -> AirflowAssetRecord:
    return AirflowAssetRecord(
        uri=str(item["uri"]),
        name=item.get("name"),
        producing_tasks=tuple(
            sorted((str(task["dag_id"]), str(task["task_id"])) for task in item.get("producing_tasks") or ())
        ),
        consuming_dag_ids=tuple(sorted({str(dag["dag_id"]) for dag in item.get(consumers) or ()})),
    )


def _dag_run(item: Mapping[str, Any]) -> DagRunRecord:
    return DagRunRecord(
        dag_id=str(item["dag_id"]),
        run_id=str(item.get("dag_run_id") or item["run_id"]),
        state=str(item.get("state")),
        run_type=item.get("run_type"),
        logical_date=_datetime(item.get("logical_date") or item.get("execution_date")),
        start_date=_datetime(item.get("start_date")),
        end_date=_datetime(item.get("end_date")),
        data_interval_start=_datetime(item.get("data_interval_start")),
        data_interval_end=_datetime(item.get("data_interval_end")),
    )


def _task_instance(item: Mapping[str, Any]) -> TaskInstanceRecord:
    state = item.get("state")
    return TaskInstanceRecord(
        dag_id=str(item["dag_id"]),
        run_id=str(item.get("dag_run_id") or item["run_id"]),
        task_id=str(item["task_id"]),
        map_index=int(item.get("map_index", -1) if item.get("map_index") is not None else -1),
        try_number=int(item.get("try_number") or 0),
        state=None if state is None else str(state),
        start_date=_datetime(item.get("start_date")),
        end_date=_datetime(item.get("end_date")),
        hostname=item.get("hostname") or None,
        operator=item.get("operator_name") or item.get("operator"),
    )
