"""What can go wrong talking to Airflow's REST API, as a few named exceptions that say what to do.

Every exception is an :class:`AirflowRestError`, so ``except AirflowRestError`` catches them all.
No message ever holds a password or a token.
"""

from __future__ import annotations


class AirflowRestError(Exception):
    """Any failure of a call to Airflow's REST API."""


class AirflowAuthenticationError(AirflowRestError):
    """Airflow refused the credentials (401) or the user may not do this (403).

    The message names the user, the URL and, where it can tell, the auth backend to use instead
    (``TokenAuthBackend`` for Airflow 3, ``BasicAuthBackend`` for Airflow 2).
    """


class AirflowApiVersionError(AirflowRestError):
    """The server does not speak the REST API asked for (or none at all): the message says which it speaks."""


class AirflowUnreachable(AirflowRestError):
    """No answer from Airflow (connection refused, timeouts) after the retries."""


class AirflowApiError(AirflowRestError):
    """Airflow answered with an error other than an authentication failure (404, 409, 422, 5xx…).

    Attributes:
        status_code: the HTTP status.
        method, path: the request (the path relative to the web server, without query).
        detail: Airflow's own explanation, when it gave one.
    """

    def __init__(self, message: str, *, status_code: int, method: str, path: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.path = path
        self.detail = detail


class AirflowRunTimeout(AirflowRestError, TimeoutError):
    """A DAG run did not finish within the time :meth:`wait_for_run_completion` was given.

    Attributes:
        dag_id, run_id: the run; timeout: the seconds waited; last_state: its state when time ran out.
    """

    def __init__(self, dag_id: str, run_id: str, timeout: float, last_state: str | None) -> None:
        super().__init__(
            f"Airflow DAG run {dag_id}/{run_id} did not finish within {timeout:g} s (last state: {last_state}). "
            "It may still be running: wait longer (timeout=...), or look at it in the Airflow UI."
        )
        self.dag_id = dag_id
        self.run_id = run_id
        self.timeout = timeout
        self.last_state = last_state


__all__ = [
    "AirflowApiError",
    "AirflowApiVersionError",
    "AirflowAuthenticationError",
    "AirflowRestError",
    "AirflowRunTimeout",
    "AirflowUnreachable",
]
