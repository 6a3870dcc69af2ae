"""How airstream authenticates to Airflow's REST API.

An auth backend hands out a :class:`requests.Session` that authenticates its requests, and the
web server's base URL, as Dagster's Airlift does (``AirflowAuthBackend``). Four come with airstream:

- :class:`TokenAuthBackend`: Airflow 3 (REST API v2). Username and password buy a JWT from
  ``POST /auth/token``; it is renewed shortly before it expires and once more when Airflow answers 401.
- :class:`BasicAuthBackend`: Airflow 2.10+ (REST API v1) with
  ``[api] auth_backends = airflow.api.auth.backend.basic_auth``.
- :class:`BearerTokenAuthBackend`: a token you already have (a managed service's API token).
- :class:`AirflowAuthBackend`: subclass it for anything else.

Example, a custom backend for Google Cloud Composer, whose ``AuthorizedSession`` renews its own tokens::

    import google.auth
    import requests
    from google.auth.transport.requests import AuthorizedSession

    from airstream.dagster_consumer.rest import AirflowAuthBackend

    class ComposerAuthBackend(AirflowAuthBackend):
        def __init__(self, webserver_url: str) -> None:
            self._webserver_url = webserver_url

        def get_session(self) -> requests.Session:
            credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
            return AuthorizedSession(credentials)

        def get_webserver_url(self) -> str:
            return self._webserver_url
"""

from __future__ import annotations

import base64
import json
import threading
import time
from abc import ABC, abstractmethod
from typing import Any

import requests
from requests.auth import AuthBase

from airstream.dagster_consumer.rest.errors import AirflowAuthenticationError, AirflowUnreachable

__all__ = [
    "AirflowAuthBackend",
    "BasicAuthBackend",
    "BearerTokenAuthBackend",
    "TokenAuthBackend",
    "jwt_expiry",
    "normalize_webserver_url",
]


def normalize_webserver_url(url: str) -> str:
    """The web server's base URL without a trailing slash; refuses what is not one.

    >>> normalize_webserver_url("https://airflow.example.com/")
    'https://airflow.example.com'
    """
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValueError(f"Airflow webserver_url must start with http:// or https://, got {url!r}")
    url = url.rstrip("/")
    for suffix in ("/api/v1", "/api/v2"):
        if url.endswith(suffix):
            raise ValueError(
                f"Airflow webserver_url must be the web server's base URL, without {suffix}: "
                f"use {url[: -len(suffix)]!r} (the API version is found by asking the server)"
            )
    return url


class AirflowAuthBackend(ABC):
    """How to reach and authenticate to one Airflow web server. Subclass it for custom auth.

    Implement :meth:`get_session` (a :class:`requests.Session` whose requests are authenticated,
    e.g. with an ``Authorization`` header, ``session.auth``, or a session class that renews its own
    tokens) and :meth:`get_webserver_url` (the base URL of the Airflow UI, without ``/api/...``).
    The client calls :meth:`get_session` once and reuses that session for every request; it adds
    its own retrying adapters for the web server's URL. Override :meth:`describe` to make error
    messages name the credentials (never include a secret).
    """

    @abstractmethod
    def get_session(self) -> requests.Session:
        """A session that authenticates every request it sends to the web server."""

    @abstractmethod
    def get_webserver_url(self) -> str:
        """The web server's base URL, e.g. ``https://airflow.example.com``."""

    def describe(self) -> str:
        """Who authenticates and how, for error messages (never a secret)."""
        return type(self).__name__


class BasicAuthBackend(AirflowAuthBackend):
    """HTTP basic auth, for Airflow 2.10+ (REST API v1).

    Airflow 3 rejects basic auth: use :class:`TokenAuthBackend` there.

    Example::

        BasicAuthBackend("http://airflow2:8080", username="admin", password=os.environ["AIRFLOW_PASSWORD"])
    """

    def __init__(self, webserver_url: str, username: str, password: str) -> None:
        self._webserver_url = normalize_webserver_url(webserver_url)
        self.username = username
        self._password = password

    def get_session(self) -> requests.Session:
        session = requests.Session()
        session.auth = (self.username, self._password)
        return session

    def get_webserver_url(self) -> str:
        return self._webserver_url

    def describe(self) -> str:
        return f"user {self.username!r} (basic auth)"

    def __repr__(self) -> str:
        return f"BasicAuthBackend(webserver_url={self._webserver_url!r}, username={self.username!r}, password='***')"


class BearerTokenAuthBackend(AirflowAuthBackend):
    """A fixed bearer token (a JWT you obtained, a managed service's API token). Never renewed:
    when Airflow refuses it, the error says so; use :class:`TokenAuthBackend` to have airstream
    renew tokens itself.

    Example::

        BearerTokenAuthBackend("https://my-deployment.astronomer.run/d1a2b3c4", token=os.environ["ASTRO_API_TOKEN"])
    """

    def __init__(self, webserver_url: str, token: str) -> None:
        self._webserver_url = normalize_webserver_url(webserver_url)
        self._token = token

    def get_session(self) -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self._token}"
        return session

    def get_webserver_url(self) -> str:
        return self._webserver_url

    def describe(self) -> str:
        return "a static bearer token (BearerTokenAuthBackend; it may have expired)"

    def __repr__(self) -> str:
        return f"BearerTokenAuthBackend(webserver_url={self._webserver_url!r}, token='***')"


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT (seconds since the epoch), read without verifying; ``None`` if absent.

    >>> jwt_expiry("x." + base64.urlsafe_b64encode(b'{"exp": 1700000000}').decode().rstrip("=") + ".y")
    1700000000.0
    """
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


class _Bearer(AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class TokenAuthBackend(AirflowAuthBackend):
    """A JWT from Airflow 3's ``POST /auth/token`` (username and password), for REST API v2.

    The token is read for its ``exp`` claim (not verified: Airflow does that) and renewed
    ``refresh_margin`` seconds before it expires (at most half its lifetime), and once more when
    Airflow refuses it (401 ``Token Expired``, or 403 ``Invalid JWT token`` from a server that restarted
    with a new secret); a second refusal is returned to the caller. Thread-safe; every session it
    hands out shares the token.

    Example::

        TokenAuthBackend("http://airflow3:8080", username="admin", password=os.environ["AIRFLOW_PASSWORD"])
    """

    def __init__(
        self, webserver_url: str, username: str, password: str, *, refresh_margin: float = 60.0, timeout: float = 30.0
    ) -> None:
        self._webserver_url = normalize_webserver_url(webserver_url)
        self.username = username
        self._password = password
        self.refresh_margin = refresh_margin
        self.timeout = timeout
        self._lock = threading.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self.tokens_fetched = 0  # how many times a token was bought (for tests and logs)

    @property
    def token_url(self) -> str:
        return f"{self._webserver_url}/auth/token"

    def get_session(self) -> requests.Session:
        return _TokenSession(self)

    def get_webserver_url(self) -> str:
        return self._webserver_url

    def describe(self) -> str:
        return f"user {self.username!r} (JWT from {self.token_url})"

    def invalidate(self) -> None:
        """Forget the current token: the next request buys a new one."""
        with self._lock:
            self._token = None

    def token_for(self, session: requests.Session, *, stale: str | None = None) -> str:
        """A token valid for a while, bought through ``session`` when there is none, it is about to
        expire, or it is ``stale`` (the one Airflow just refused)."""
        with self._lock:
            if self._token is None or self._token == stale or time.time() >= self._renew_at:
                self._token, self._renew_at = self._fetch(session)
            return self._token

    def _fetch(self, session: requests.Session) -> tuple[str, float]:
        try:
            response = requests.Session.request(
                session,
                "POST",
                self.token_url,
                json={"username": self.username, "password": self._password},
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise AirflowUnreachable(
                f"cannot reach {self.token_url} to get a token for user {self.username!r}: {type(exc).__name__}. "
                "Check webserver_url and that Airflow's API server runs."
            ) from None
        if response.status_code in (401, 403):
            raise AirflowAuthenticationError(
                f"Airflow at {self._webserver_url} refused the username and password of user {self.username!r} "
                f"(POST /auth/token answered {response.status_code}). Check the credentials."
            )
        if response.status_code in (404, 405):
            raise AirflowAuthenticationError(
                f"Airflow at {self._webserver_url} has no token endpoint (POST /auth/token answered "
                f"{response.status_code}): it is not Airflow 3. For Airflow 2 use "
                f"BasicAuthBackend({self._webserver_url!r}, username={self.username!r}, password=...)."
            )
        try:
            response.raise_for_status()
            token = str(_json(response)["access_token"])
        except (requests.HTTPError, KeyError, TypeError, ValueError):
            raise AirflowAuthenticationError(
                f"Airflow at {self._webserver_url} gave no token for user {self.username!r} "
                f"(POST /auth/token answered {response.status_code})."
            ) from None
        self.tokens_fetched += 1
        now = time.time()
        expiry = jwt_expiry(token)
        if expiry is None:
            return token, float("inf")  # no exp claim: renewed on a 401 only
        margin = min(self.refresh_margin, max(0.0, (expiry - now) / 2))
        return token, expiry - margin

    def __repr__(self) -> str:
        return f"TokenAuthBackend(webserver_url={self._webserver_url!r}, username={self.username!r}, password='***')"


def _json(response: requests.Response) -> Any:
    return response.json()


class _TokenSession(requests.Session):
    """A session that sends its backend's current JWT and retries once with a new one on a 401."""

    def __init__(self, backend: TokenAuthBackend) -> None:
        super().__init__()
        self._backend = backend

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("auth") is not None:  # the caller chose its own auth
            return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]
        token = self._backend.token_for(self)
        kwargs["auth"] = _Bearer(token)
        response = super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]
        if not _token_refused(response):
            return response
        response.close()
        kwargs["auth"] = _Bearer(self._backend.token_for(self, stale=token))
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]


def _token_refused(response: requests.Response) -> bool:
    """401 (no token, or "Token Expired"), or Airflow 3's 403 "Invalid JWT token" (a token signed with
    another secret, e.g. after the API server restarted with a new one); not a 403 for a missing permission."""
    if response.status_code == 401:
        return True
    return response.status_code == 403 and b"Invalid JWT" in response.content[:500]
