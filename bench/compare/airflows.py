"""The Airflows the benchmark observes: 2.11 (side by side with Airlift) and 3.3, with the bench DAGs.

Both run the airstream listener (devstack's environments) on :mod:`bench.compare.bench_dags`,
copied into a DAGs folder of the work directory in chunks of 100 DAGs; :func:`set_dag_count`
grows the folder between phases.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from pathlib import Path

from bench.compare.bench_dags import CHUNK_SIZE
from devstack.airflow import LocalAirflow, airflow_env, start_airflow
from devstack.airflow2 import Airflow2Venv, LocalAirflow2, airflow2_env, ensure_airflow2_venv, start_airflow2
from devstack.processes import StackError

TEMPLATE = Path(__file__).with_name("bench_dags.py")
# 1,000 DAGs take a while to parse on two busy cores; Airflow's default import timeout is 30 s.
_SLOW_PARSING = {"AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600", "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "600"}


def set_dag_count(folder: Path, count: int) -> int:
    """Write the bench DAG files for ``count`` DAGs into ``folder``; returns how many DAGs Airflow will list."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench_dag_count.txt").write_text(str(count))
    template = TEMPLATE.read_text()
    for chunk in range(math.ceil(count / CHUNK_SIZE)):
        target = folder / f"bench_dags_{chunk:02d}.py"
        if not target.exists():
            target.write_text(template.replace("CHUNK = 0  # the copies set their own", f"CHUNK = {chunk}"))
    return count + 1  # and bench_failing


def wait_for_dags(api: object, expected: int, timeout: float = 900) -> None:
    """Wait until Airflow lists ``expected`` DAGs (``api`` has ``dag_ids()``)."""
    deadline = time.monotonic() + timeout
    listed = 0
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            listed = len(api.dag_ids())  # type: ignore[attr-defined]
            if listed >= expected:
                return
        time.sleep(3)
    raise StackError(f"Airflow lists {listed} DAGs, not {expected}, after {timeout:.0f} s")


@contextlib.contextmanager
def airflow2(
    work: Path, *, bootstrap_servers: str, topic: str, name: str, dag_count: int
) -> Iterator[tuple[Airflow2Venv, dict[str, str], LocalAirflow2]]:
    """Airflow 2.11 (its venv built or updated first) with the listener publishing as ``name``."""
    venv = ensure_airflow2_venv()
    home = work / f"airflow2-{name}"
    dags = home / "dags"
    expected = set_dag_count(dags, dag_count)
    env = airflow2_env(
        venv, home, bootstrap_servers=bootstrap_servers, topic=topic, instance_name=name, dags_folder=dags
    )
    env.update(_SLOW_PARSING)
    with start_airflow2(venv, env, log_dir=home / "logs", expected_dags=expected, timeout=300) as airflow:
        yield venv, env, airflow


@contextlib.contextmanager
def airflow3(work: Path, *, bootstrap_servers: str, topic: str, name: str, dag_count: int) -> Iterator[LocalAirflow]:
    """Airflow 3.3 (api-server, scheduler, dag-processor) with the listener publishing as ``name``."""
    home = work / f"airflow3-{name}"
    dags = home / "dags"
    expected = set_dag_count(dags, dag_count)
    env = airflow_env(home, bootstrap_servers=bootstrap_servers, topic=topic, instance_name=name, dags_folder=dags)
    env.update(_SLOW_PARSING)
    with start_airflow(env, log_dir=home / "logs", expected_dags=expected, timeout=300) as airflow:
        yield airflow
