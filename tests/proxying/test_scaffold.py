"""`airstream proxy scaffold` writes one proxied-state file per DAG, every task unproxied, keeping existing files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from airstream.airflow_listener.proxying import load_proxied_state_from_yaml
from devstack.airflow import inherited_env


def _scaffold(tmp_path: Path, dags: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "airflow-home"
    home.mkdir(exist_ok=True)
    env = {**inherited_env(), "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("PYTHONPATH", None)
    command = [
        sys.executable,
        "-m",
        "airstream.cli",
        "proxy",
        "scaffold",
        "--dags-folder",
        str(dags),
        "--out",
        str(out),
    ]
    return subprocess.run([*command, *extra], env=env, capture_output=True, text=True, timeout=180, check=False)


def test_scaffold_writes_every_dag_with_every_task_unproxied_and_keeps_existing_files(
    tmp_path: Path, proxy_dags: Path
) -> None:
    out = tmp_path / "state"
    out.mkdir()
    (out / "proxy_custom.yaml").write_text("tasks:\n  - id: secured\n    proxied: true\n")  # a decision already taken

    first = _scaffold(tmp_path, proxy_dags, out)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"wrote {out / 'proxy_etl.yaml'}" in first.stdout
    assert f"kept {out / 'proxy_custom.yaml'}" in first.stdout
    state = load_proxied_state_from_yaml(out)
    etl, whole, custom = (state.for_dag(dag_id) for dag_id in ("proxy_etl", "proxy_whole", "proxy_custom"))
    assert etl is not None and etl.tasks == {"daily_report": False, "extract": False, "flaky": False, "load": False}
    # proxy_whole is proxied as a whole in the DAGs folder: the scaffold lists the tasks as written.
    assert whole is not None and whole.tasks == {"build": False, "publish": False}
    assert custom is not None and custom.tasks == {"secured": True}

    second = _scaffold(tmp_path, proxy_dags, out, "--overwrite")
    assert second.returncode == 0, second.stderr[-3000:]
    custom = load_proxied_state_from_yaml(out).for_dag("proxy_custom")
    assert custom is not None and custom.tasks == {"secured": False}


def test_scaffold_reports_dag_files_that_do_not_import(tmp_path: Path, proxy_dags: Path) -> None:
    (proxy_dags / "broken.py").write_text("from airflow.sdk import DAG\nraise RuntimeError('broken on purpose')\n")
    result = _scaffold(tmp_path, proxy_dags, tmp_path / "state")
    assert result.returncode == 1
    assert "broken.py" in result.stderr and "broken on purpose" in result.stderr
    assert (tmp_path / "state" / "proxy_etl.yaml").exists()  # the other DAGs are still written
