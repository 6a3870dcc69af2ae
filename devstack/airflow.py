"""A local Airflow 3 with the airstream listener, for the demo and the tests.

Components run as separate processes (api-server, scheduler, dag-processor) on free ports,
with SQLite and the LocalExecutor; every process is stopped by its pid.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, TypeVar

import httpx

from devstack.processes import ManagedProcess, StackError, free_port

EXAMPLE_DAGS = Path(__file__).parent / "example_dags"
OBSERVATION_DAGS = Path(__file__).parent / "observation_dags"
USERNAME = "admin"
PASSWORD = "admin"
COMPONENTS = ("api-server", "scheduler", "dag-processor")


def airflow_executable() -> str:
    """The ``airflow`` command of the running Python environment."""
    candidate = Path(sys.executable).parent / "airflow"
    return str(candidate) if candidate.exists() else "airflow"


def airflow_env(
    home: Path,
    *,
    bootstrap_servers: str,
    topic: str,
    instance_name: str,
    dags_folder: Path = EXAMPLE_DAGS,
    api_port: int | None = None,
) -> dict[str, str]:
    """The environment of every Airflow process: a small, quiet local instance with the listener."""
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USERNAME: PASSWORD}))
    api_port = api_port or free_port()
    base_url = f"http://127.0.0.1:{api_port}"
    env = inherited_env()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__API_AUTH__JWT_SECRET": "airstream-local-stack-secret-0123456789",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            **listener_env(home, bootstrap_servers=bootstrap_servers, topic=topic, instance_name=instance_name),
        }
    )
    return env


def inherited_env() -> dict[str, str]:
    """This process's environment without any ``AIRFLOW__*`` setting, so none leaks into a local Airflow."""
    return {key: value for key, value in os.environ.items() if not key.startswith("AIRFLOW__")}


def listener_env(home: Path, *, bootstrap_servers: str, topic: str, instance_name: str) -> dict[str, str]:
    """The listener's ``[airstream]`` options for an Airflow whose home is ``home`` (any Airflow version)."""
    return {
        "AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS": bootstrap_servers,
        "AIRFLOW__AIRSTREAM__TOPIC": topic,
        "AIRFLOW__AIRSTREAM__INSTANCE_NAME": instance_name,
        "AIRFLOW__AIRSTREAM__SPOOL_DIR": str(home / "airstream-spool"),
    }


def run_airflow(
    env: Mapping[str, str],
    *args: str,
    timeout: float = 180,
    executable: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one ``airflow`` CLI command to completion and return its result (output captured).

    ``executable`` defaults to this environment's ``airflow`` (see :func:`airflow_executable`).
    """
    return subprocess.run(
        [executable or airflow_executable(), *args],
        env=dict(env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def migrate_db(env: Mapping[str, str], *, executable: str | None = None, cwd: Path | None = None) -> None:
    """``airflow db migrate``; raises :class:`StackError` with the output if it fails."""
    result = run_airflow(env, "db", "migrate", executable=executable, cwd=cwd)
    if result.returncode != 0:
        raise StackError(f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")


class _ListsDags(Protocol):
    def dag_ids(self) -> list[str]: ...


_P = TypeVar("_P", bound="AirflowProcesses")


@dataclass
class AirflowProcesses:
    """The processes of a running local Airflow (any version) and their environment; stopped together."""

    env: dict[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)

    def launch(
        self,
        components: Sequence[tuple[str, Sequence[str]]],
        *,
        log_dir: Path,
        healthy: Callable[[], bool],
        connect: Callable[[], _ListsDags],
        expected_dags: int = 0,
        timeout: float = 120,
    ) -> None:
        """Start each ``(name, argv)`` component, logging to ``log_dir/airflow-<name>.log``; wait until the
        first one is ``healthy()`` and the API that ``connect()`` returns lists ``expected_dags`` DAGs.
        Stops everything it started if anything fails."""
        try:
            for name, argv in components:
                self.processes.append(
                    ManagedProcess.start(
                        f"airflow {name}", argv, env=self.env, log_path=log_dir / f"airflow-{name}.log"
                    )
                )
            first = self.processes[0]
            first.wait_until(healthy, timeout=timeout, what="the Airflow API to answer")
            if expected_dags:
                api = connect()
                first.wait_until(
                    lambda: len(api.dag_ids()) >= expected_dags, timeout=timeout, what=f"{expected_dags} DAGs parsed"
                )
            for process in self.processes:
                if not process.is_alive():
                    raise StackError(f"{process.name} exited early:\n{process.log_tail()}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every process, the last started first (each by its pid, SIGKILL after 10 s)."""
        for process in reversed(self.processes):
            process.stop(timeout=10)

    def __enter__(self: _P) -> _P:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass
class LocalAirflow(AirflowProcesses):
    """A running local Airflow 3: its URL, credentials, environment and processes."""

    @property
    def url(self) -> str:
        return self.env["AIRFLOW__API__BASE_URL"]

    def api(self) -> AirflowApi:
        return AirflowApi(self.url, USERNAME, PASSWORD)


def start_airflow(env: dict[str, str], *, log_dir: Path, expected_dags: int = 0, timeout: float = 120) -> LocalAirflow:
    """Migrate the database, start the components, and wait until the API answers and
    ``expected_dags`` DAGs are parsed. Stops what it started if anything fails."""
    migrate_db(env)
    airflow = LocalAirflow(env=env)
    airflow.launch(
        [(component, [airflow_executable(), component]) for component in COMPONENTS],
        log_dir=log_dir,
        healthy=lambda: _healthy(airflow.url),
        connect=airflow.api,
        expected_dags=expected_dags,
        timeout=timeout,
    )
    return airflow


def _healthy(url: str) -> bool:
    return httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200


class SharedRestCalls:
    """What Airflow's REST API v1 (Airflow 2) and v2 (Airflow 3) share: the same paths and answers for
    DAG runs and task-instance tries, relative to ``client``'s base URL (``.../api/v1`` or ``.../api/v2``)."""

    def __init__(self, url: str, client: httpx.Client) -> None:
        self.url = url
        self._client = client

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._get(f"/dags/{dag_id}/dagRuns/{run_id}")

    def task_ids(self, dag_id: str) -> list[str]:
        """The task ids of the DAG as Airflow last parsed it."""
        return sorted(task["task_id"] for task in self._get(f"/dags/{dag_id}/tasks")["tasks"])

    def task_state(self, dag_id: str, run_id: str, task_id: str) -> str | None:
        state = self._get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")["state"]
        return None if state is None else str(state)

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self._get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def set_dag_run_state(self, dag_id: str, run_id: str, state: str) -> None:
        """Mark a DAG run success or failed by hand, as a user does in the UI."""
        response = self._client.patch(f"/dags/{dag_id}/dagRuns/{run_id}", json={"state": state})
        response.raise_for_status()

    def task_instance_tries(self, dag_id: str, run_id: str, task_id: str, map_index: int) -> list[dict[str, Any]]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        if map_index >= 0:
            path += f"/{map_index}"
        return list(self._get(f"{path}/tries")["task_instances"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 180) -> str:
        """Wait until the run is finished; returns its final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = str(self.dag_run(dag_id, run_id)["state"])
            if state in ("success", "failed"):
                return state
            time.sleep(1)
        raise StackError(f"DAG run {dag_id}/{run_id} did not finish within {timeout:.0f} s")

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    def _get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self._client.get(path, params=params)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


class AirflowApi(SharedRestCalls):
    """The few Airflow REST v2 calls the demo and the tests make (JWT auth)."""

    def __init__(self, url: str, username: str, password: str) -> None:
        response = httpx.post(f"{url}/auth/token", json={"username": username, "password": password}, timeout=10)
        if response.status_code not in (200, 201):
            raise StackError(f"Airflow at {url} refused the credentials for {username!r}: {response.text}")
        client = httpx.Client(
            base_url=f"{url}/api/v2",
            headers={"Authorization": f"Bearer {response.json()['access_token']}"},
            timeout=15,
        )
        super().__init__(url, client)

    def dag_ids(self) -> list[str]:
        return [dag["dag_id"] for dag in self._get("/dags", limit=100)["dags"]]

    def trigger(self, dag_id: str, logical_date: str | None = None) -> str:
        """Start a run (a manual run has no logical date unless given one, in ISO 8601)."""
        response = self._client.post(f"/dags/{dag_id}/dagRuns", json={"logical_date": logical_date})
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self._get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"])

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        """Set a task instance's state by hand, as a user does in the UI."""
        response = self._client.patch(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", json={"new_state": state}
        )
        response.raise_for_status()
