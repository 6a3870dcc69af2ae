"""Fixtures for the migration tests: parsing a DAGs folder with a real Airflow, in its own process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from devstack.airflow import inherited_env

PROXY_DAGS = Path(__file__).parents[2] / "devstack" / "proxy_dags"

# Parses a DAGs folder with Airflow's DagBag and prints what each DAG holds, as JSON.
_PARSE = r"""
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag
try:
    bag = DagBag(dag_folder=sys.argv[1], include_examples=False)
except TypeError:
    bag = DagBag(dag_folder=sys.argv[1])
dags = {}
for dag_id, dag in bag.dags.items():
    dags[dag_id] = {
        task.task_id: {
            "task_type": task.task_type,
            "operator_name": getattr(task, "operator_name", None),
            "class": type(task).__name__,
            "upstream": sorted(task.upstream_task_ids),
            "downstream": sorted(task.downstream_task_ids),
            "retries": task.retries,
            "retry_delay": task.retry_delay.total_seconds() if task.retry_delay else None,
            "pool": task.pool,
            "on_failure_callback": bool(task.on_failure_callback),
            "job": getattr(task, "dagster_job_name", None),
            "group": task.task_group.group_id if getattr(task, "task_group", None) else None,
        }
        for task in dag.tasks
    }
print(json.dumps({"dags": dags, "errors": {str(k): str(v) for k, v in bag.import_errors.items()}}))
"""


@pytest.fixture
def proxy_dags(tmp_path: Path) -> Path:
    """A copy of devstack/proxy_dags the test may change (its proxied_state/ included)."""
    return Path(shutil.copytree(PROXY_DAGS, tmp_path / "dags"))


@pytest.fixture
def parse_dags(tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``parse_dags(folder, python=..., env=...)``: what Airflow's DagBag makes of a folder (tasks per DAG,
    import errors); ``env`` adds environment variables (Airflow options) to the parsing process."""

    def parse(folder: Path, python: str = sys.executable, env: dict[str, str] | None = None) -> dict[str, Any]:
        home = tmp_path / "airflow-home"
        home.mkdir(exist_ok=True)
        process_env = {
            **inherited_env(),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
            "AIRFLOW__AIRSTREAM__ENABLED": "False",
            **(env or {}),
        }
        process_env.pop("PYTHONPATH", None)
        result = subprocess.run(
            [python, "-c", _PARSE, str(folder)],
            env=process_env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
        return parsed

    return parse
