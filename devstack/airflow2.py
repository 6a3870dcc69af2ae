"""A local Airflow 2.11 with the airstream listener, in a virtual environment of its own.

Airflow 2 and Airflow 3 cannot share an environment, so the tests build one for Airflow 2
(:func:`ensure_airflow2_venv`), install this repository's ``airflow`` extra into it the way a
deployment does, under the pins Airflow already installed, and run Airflow from there: the CLI
(``airflow dags test``) or a scheduler and a webserver (:func:`start_airflow2`), SQLite with the
SequentialExecutor (the only executor Airflow 2 allows with SQLite). :class:`AirflowApiV1` speaks
its REST API v1 with the method names of :class:`devstack.airflow.AirflowApi`, so
:func:`devstack.facts.facts_from_api` reads either version.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devstack import REPO_ROOT
from devstack.airflow import (
    OBSERVATION_DAGS,
    PASSWORD,
    USERNAME,
    AirflowProcesses,
    SharedRestCalls,
    inherited_env,
    listener_env,
    migrate_db,
    run_airflow,
)
from devstack.processes import StackError, free_port

__all__ = [
    "AIRFLOW2_VERSION",
    "REPO_ROOT",
    "VENV_ENV",
    "Airflow2Venv",
    "AirflowApiV1",
    "LocalAirflow2",
    "airflow2_env",
    "default_venv_path",
    "ensure_airflow2_venv",
    "prepare_airflow2_home",
    "run_airflow2",
    "source_fingerprint",
    "start_airflow2",
]

AIRFLOW2_VERSION = "2.11.2"
VENV_ENV = "AIRSTREAM_AIRFLOW2_VENV"
STAMP_NAME = ".airstream-stamp.json"
CONSTRAINTS_NAME = "airflow-constraints.txt"
BUILD_LOG_NAME = "airstream-build.log"
PAGE_LIMIT = 100  # the largest page Airflow's REST API serves

# What the airstream package installed into Airflow is built from; a change reinstalls it.
_FINGERPRINTED_PACKAGES = ("schemas", "airflow_listener")
# Never copied into the build snapshot of the repository (see repository_snapshot).
_SNAPSHOT_SKIP_TOP = {".git", ".venv", ".work", ".ci", "tests", "bench", "compose", "scripts", "build", "dist"}
_SNAPSHOT_SKIP_ANY = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}


# --------------------------------------------------------------------------- the virtual environment


@dataclass(frozen=True)
class Airflow2Venv:
    """A virtual environment holding Airflow 2.11 and ``airstream[airflow]``."""

    path: Path

    @property
    def bin_dir(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin_dir / "python"

    @property
    def airflow(self) -> Path:
        """The ``airflow`` command of this environment."""
        return self.bin_dir / "airflow"

    @property
    def constraints(self) -> Path:
        """The pins the extra was installed under: ``pip freeze`` of Airflow alone."""
        return self.path / CONSTRAINTS_NAME

    def pip(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run ``python -m pip ARGS`` in this environment; the result is returned, never raised."""
        return subprocess.run(
            [str(self.python), "-m", "pip", "--disable-pip-version-check", "--no-input", *args],
            env=_clean_python_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def default_venv_path() -> Path:
    """``$AIRSTREAM_AIRFLOW2_VENV``, else ``<repo>/.work/airflow-2.11.2-venv``."""
    configured = os.environ.get(VENV_ENV, "").strip()
    return Path(configured).expanduser() if configured else REPO_ROOT / ".work" / f"airflow-{AIRFLOW2_VERSION}-venv"


def source_fingerprint(repo: Path = REPO_ROOT) -> str:
    """A hash of ``pyproject.toml`` and the ``.py`` and ``.json`` files of the packages Airflow runs
    (schemas, listener)."""
    digest = hashlib.sha256()
    files = [repo / "pyproject.toml"]
    for package in _FINGERPRINTED_PACKAGES:
        files += sorted(
            path
            for path in (repo / package).rglob("*")
            if path.suffix in (".py", ".json") and path.is_file() and "__pycache__" not in path.parts
        )
    for path in files:
        digest.update(str(path.relative_to(repo)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def ensure_airflow2_venv(path: Path | None = None, *, repo: Path = REPO_ROOT) -> Airflow2Venv:
    """The Airflow 2.11 environment at ``path`` (default :func:`default_venv_path`), built or updated as needed.

    The first time: ``python -m venv``, ``pip install apache-airflow==2.11.2``, then ``pip freeze`` into a
    constraints file and ``pip install "<repo>[airflow]"`` (not editable) under it, so the extra can add
    its own requirements but never move one of Airflow's pins; that is installing under Airflow's
    constraints file. Later calls only reinstall airstream itself (``--no-deps --force-reinstall``) when
    :func:`source_fingerprint` changed, and redo the extra when ``pyproject.toml`` changed.

    A stamp file inside the environment records each finished step, so an environment left half-built
    (an interrupted run) is removed and rebuilt. A file lock next to it serializes concurrent callers.
    Raises :class:`StackError` with pip's output when a step fails. Takes about a minute the first time.
    """
    venv = Airflow2Venv((path or default_venv_path()).resolve())
    venv.path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(venv.path.with_name(venv.path.name + ".lock")):
        stamp = _read_stamp(venv)
        base = {"airflow": AIRFLOW2_VERSION, "python": platform.python_version()}
        if any(stamp.get(key) != value for key, value in base.items()) or not venv.python.exists():
            _build_base(venv)
            stamp = dict(base)
            _write_stamp(venv, stamp)
        # The stamp records what the snapshot held, so an edit made while pip runs is installed next time.
        if stamp.get("extra") != _pyproject_hash(repo):
            with repository_snapshot(repo) as source:
                _pip_or_fail(venv, "install the airflow extra", "install", f"{source}[airflow]", "-c", venv.constraints)
                stamp.update(extra=_pyproject_hash(source), sources=source_fingerprint(source))
            _write_stamp(venv, stamp)
        if stamp.get("sources") != source_fingerprint(repo):
            with repository_snapshot(repo) as source:
                _pip_or_fail(venv, "reinstall airstream", "install", "--no-deps", "--force-reinstall", str(source))
                stamp.update(sources=source_fingerprint(source))
            _write_stamp(venv, stamp)
    return venv


def _pyproject_hash(repo: Path) -> str:
    return hashlib.sha256((repo / "pyproject.toml").read_bytes()).hexdigest()


def _build_base(venv: Airflow2Venv) -> None:
    """A brand-new environment with Airflow alone, and its ``pip freeze`` as the constraints file."""
    if venv.path.exists():
        shutil.rmtree(venv.path)
    created = subprocess.run(
        [sys.executable, "-m", "venv", str(venv.path)], env=_clean_python_env(), capture_output=True, text=True
    )
    if created.returncode != 0:
        raise StackError(f"python -m venv {venv.path} failed:\n{created.stdout}\n{created.stderr}")
    _pip_or_fail(venv, "install Airflow", "install", f"apache-airflow=={AIRFLOW2_VERSION}")
    frozen = _pip_or_fail(venv, "freeze Airflow's pins", "freeze", "--exclude", "airstream")
    venv.constraints.write_text(frozen)


def _pip_or_fail(venv: Airflow2Venv, what: str, *args: str | Path) -> str:
    argv = [str(arg) for arg in args]
    started = time.monotonic()
    result = venv.pip(*argv)
    with open(venv.path / BUILD_LOG_NAME, "a") as log:
        log.write(f"$ pip {' '.join(argv)}  # {time.monotonic() - started:.1f} s, exit {result.returncode}\n")
        log.write(result.stdout + result.stderr)
    if result.returncode != 0:
        raise StackError(
            f"cannot {what} in {venv.path} (pip {' '.join(argv)}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


@contextlib.contextmanager
def repository_snapshot(repo: Path) -> Iterator[Path]:
    """A copy of the repository's package sources to build airstream from.

    pip builds a local project in its own folder: it would write ``build/`` (which keeps files that
    were deleted since, and puts them in the wheel) and ``airstream.egg-info`` into the working tree;
    an egg-info there registers the plugin a second time for any Python that has the repository on
    ``sys.path``. A throwaway copy keeps the working tree as it is.
    """

    def skip(folder: str, names: list[str]) -> set[str]:
        top = Path(folder).resolve() == repo.resolve()
        return {
            name
            for name in names
            if name in _SNAPSHOT_SKIP_ANY
            or name.endswith(".egg-info")
            or (top and name in _SNAPSHOT_SKIP_TOP)
            or (Path(folder, name) / "pyvenv.cfg").exists()
        }

    with tempfile.TemporaryDirectory(prefix="airstream-build-") as scratch:
        source = Path(scratch) / "airstream"
        shutil.copytree(repo, source, ignore=skip, symlinks=True)
        yield source


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_stamp(venv: Airflow2Venv) -> dict[str, str]:
    try:
        stamp = json.loads((venv.path / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return {}
    return {str(key): str(value) for key, value in stamp.items()} if isinstance(stamp, dict) else {}


def _write_stamp(venv: Airflow2Venv, stamp: Mapping[str, str]) -> None:
    partial = venv.path / (STAMP_NAME + ".tmp")
    partial.write_text(json.dumps(dict(stamp), indent=2, sort_keys=True))
    partial.replace(venv.path / STAMP_NAME)


def _clean_python_env() -> dict[str, str]:
    """This environment minus what would make another Python import this repository or this venv."""
    drop = {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV", "__PYVENV_LAUNCHER__"}
    return {key: value for key, value in inherited_env().items() if key not in drop}


# --------------------------------------------------------------------------- an Airflow 2 home and its processes


def airflow2_env(
    venv: Airflow2Venv,
    home: Path,
    *,
    bootstrap_servers: str,
    topic: str,
    instance_name: str,
    dags_folder: Path = OBSERVATION_DAGS,
    web_port: int | None = None,
) -> dict[str, str]:
    """The environment of every Airflow 2 process: a small, quiet local instance with the listener.

    The venv's ``bin`` comes first on ``PATH`` (the scheduler starts ``airflow tasks run`` through
    it), gunicorn's control socket goes under ``home`` (``XDG_RUNTIME_DIR``), and REST v1 accepts
    basic auth. The ``[airstream]`` options are those of :func:`devstack.airflow.listener_env`.
    """
    home.mkdir(parents=True, exist_ok=True)
    runtime_dir = home / "run"
    runtime_dir.mkdir(mode=0o700, exist_ok=True)
    web_port = web_port or free_port()
    env = _clean_python_env()
    env.update(
        {
            "PATH": os.pathsep.join([str(venv.bin_dir), env.get("PATH", os.defpath)]),
            "VIRTUAL_ENV": str(venv.path),
            "XDG_RUNTIME_DIR": str(runtime_dir),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY": "True",  # silences a deprecation warning on every command
            "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(web_port),
            "AIRFLOW__WEBSERVER__BASE_URL": f"http://127.0.0.1:{web_port}",
            "AIRFLOW__WEBSERVER__SECRET_KEY": "airstream-local-airflow2-secret",
            "AIRFLOW__WEBSERVER__WORKERS": "2",
            "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__PARSING_PROCESSES": "1",
            **listener_env(home, bootstrap_servers=bootstrap_servers, topic=topic, instance_name=instance_name),
        }
    )
    return env


def run_airflow2(
    venv: Airflow2Venv, env: Mapping[str, str], *args: str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run one command of this environment's ``airflow`` CLI in its home; output captured, never raised."""
    return run_airflow(env, *args, timeout=timeout, executable=str(venv.airflow), cwd=Path(env["AIRFLOW_HOME"]))


def prepare_airflow2_home(venv: Airflow2Venv, env: Mapping[str, str]) -> None:
    """``airflow db migrate`` and an Admin user (``admin``/``admin``) for REST v1 basic auth."""
    migrate_db(env, executable=str(venv.airflow), cwd=Path(env["AIRFLOW_HOME"]))
    created = run_airflow2(
        venv,
        env,
        "users",
        "create",
        "--username",
        USERNAME,
        "--password",
        PASSWORD,
        "--firstname",
        "Air",
        "--lastname",
        "Stream",
        "--email",
        "admin@example.com",
        "--role",
        "Admin",
    )
    if created.returncode != 0 and "already exist" not in created.stdout + created.stderr:
        raise StackError(f"airflow users create failed:\n{created.stdout[-2000:]}\n{created.stderr[-3000:]}")


@dataclass
class LocalAirflow2(AirflowProcesses):
    """A running local Airflow 2 (scheduler and webserver): its URL, environment and processes."""

    @property
    def url(self) -> str:
        return self.env["AIRFLOW__WEBSERVER__BASE_URL"]

    def api(self) -> AirflowApiV1:
        return AirflowApiV1(self.url, USERNAME, PASSWORD)


def start_airflow2(
    venv: Airflow2Venv, env: dict[str, str], *, log_dir: Path, expected_dags: int = 0, timeout: float = 120
) -> LocalAirflow2:
    """Migrate the database, create the admin user, start the scheduler and the webserver, and wait
    until ``/api/v1/health`` answers and ``expected_dags`` DAGs are parsed. Stops what it started if
    anything fails; stop the result with ``stop()`` or a ``with`` block."""
    prepare_airflow2_home(venv, env)
    airflow = LocalAirflow2(env=env)
    airflow.launch(
        [("webserver", [str(venv.airflow), "webserver"]), ("scheduler", [str(venv.airflow), "scheduler"])],
        log_dir=log_dir,
        healthy=lambda: _healthy(airflow.url),
        connect=airflow.api,
        expected_dags=expected_dags,
        timeout=timeout,
    )
    return airflow


def _healthy(url: str) -> bool:
    response = httpx.get(f"{url}/api/v1/health", timeout=2)
    return response.status_code == 200 and response.json()["scheduler"]["status"] == "healthy"


# --------------------------------------------------------------------------- REST API v1


class AirflowApiV1(SharedRestCalls):
    """Airflow 2's REST API v1 (basic auth) with the methods and answers of :class:`devstack.airflow.AirflowApi`."""

    def __init__(self, url: str, username: str, password: str) -> None:
        client = httpx.Client(base_url=f"{url}/api/v1", auth=(username, password), timeout=15)
        super().__init__(url, client)
        response = self._client.get("/dags", params={"limit": 1})
        if response.status_code in (401, 403):
            raise StackError(f"Airflow at {url} refused the credentials for {username!r}: {response.text}")

    def dag_ids(self) -> list[str]:
        return [dag["dag_id"] for dag in self._get_all("/dags", "dags")]

    def trigger(self, dag_id: str) -> str:
        response = self._client.post(f"/dags/{dag_id}/dagRuns", json={})
        response.raise_for_status()
        return str(response.json()["dag_run_id"])

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """Every run of ``dag_id``, oldest first."""
        return self._get_all(f"/dags/{dag_id}/dagRuns", "dag_runs", order_by="execution_date")

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return self._get_all(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "task_instances")

    def set_task_state(self, dag_id: str, run_id: str, task_id: str, state: str) -> None:
        """Set a task instance's state by hand, as a user does in the UI."""
        response = self._client.patch(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}", json={"dry_run": False, "new_state": state}
        )
        response.raise_for_status()

    def _get_all(self, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged list, page by page (Airflow serves at most 100 a page)."""
        items: list[dict[str, Any]] = []
        while True:
            page = self._get(path, limit=PAGE_LIMIT, offset=len(items), **params)
            batch = list(page[key])
            items += batch
            if len(batch) < PAGE_LIMIT or len(items) >= int(page.get("total_entries", 0)):
                return items
