"""An API-key gateway for tests: a reverse proxy that refuses requests without the right ``X-Api-Key``.

Put it in front of the Dagster webserver to check, on the server side, that a custom proxy
operator's session headers arrive.

Example::

    with ApiKeyGateway("http://127.0.0.1:3000", api_key="s3cret") as gateway:
        requests.post(f"{gateway.url}/graphql", headers={"X-Api-Key": "s3cret"}, json=...)
        assert gateway.accepted == 1
"""

from __future__ import annotations

import threading

from devstack.counting_proxy import CountingProxy

API_KEY_HEADER = "X-Api-Key"


class ApiKeyGateway(CountingProxy):
    """A :class:`CountingProxy` that forwards only requests carrying ``X-Api-Key: <api_key>``
    (others get HTTP 401) and counts both."""

    def __init__(self, upstream: str, *, api_key: str, timeout: float = 60.0) -> None:
        super().__init__(upstream, timeout=timeout)
        self.api_key = api_key
        self.accepted = 0
        self.refused = 0
        self._gate = threading.Lock()

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes | None
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        given = next((value for name, value in headers if name.lower() == API_KEY_HEADER.lower()), None)
        with self._gate:
            if given != self.api_key:
                self.refused += 1
                return 401, "Unauthorized", [("Content-Type", "text/plain")], b"missing or wrong X-Api-Key"
            self.accepted += 1
        return super()._forward(method, path, headers, body)
