"""Write the proxied-state files of every DAG in a DAGs folder, every task ``proxied: false``."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airstream.airflow_listener.proxying.dag_rewrite import SCAFFOLDING_ENV
from airstream.airflow_listener.proxying.proxied_state import render_dag_proxied_state


@dataclass
class ScaffoldResult:
    """What :func:`scaffold_proxied_state` wrote, kept, and could not import."""

    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    import_errors: dict[str, str] = field(default_factory=dict)


def scaffold_proxied_state(dags_folder: Path | str, out: Path | str, *, overwrite: bool = False) -> ScaffoldResult:
    """Parse ``dags_folder`` with Airflow's DagBag and write ``<out>/<dag_id>.yaml`` per DAG.

    Existing files are kept unless ``overwrite``: they hold decisions already taken. The DAGs
    are parsed with ``proxying_to_dagster`` switched off, so a DAG proxied already lists its
    own tasks.

    Example::

        result = scaffold_proxied_state("dags/", "dags/proxied_state")
        result.written   # [PosixPath("dags/proxied_state/etl.yaml"), ...]
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bag = _dag_bag(Path(dags_folder))
    result = ScaffoldResult(import_errors={str(path): str(error) for path, error in bag.import_errors.items()})
    for dag_id in sorted(bag.dags):
        dag = bag.dags[dag_id]
        path = out / f"{dag_id}.yaml"
        if path.exists() and not overwrite:
            result.kept.append(path)
            continue
        path.write_text(render_dag_proxied_state(sorted(dag.task_dict)))
        result.written.append(path)
    return result


def _dag_bag(dags_folder: Path) -> Any:
    previous = os.environ.get(SCAFFOLDING_ENV)
    os.environ[SCAFFOLDING_ENV] = "1"
    try:
        return _parse(dags_folder)
    finally:
        if previous is None:
            os.environ.pop(SCAFFOLDING_ENV, None)
        else:
            os.environ[SCAFFOLDING_ENV] = previous


def _parse(dags_folder: Path) -> Any:
    try:
        dag_bag: Any = importlib.import_module("airflow.dag_processing.dagbag").DagBag  # Airflow 3.1+
    except ImportError:
        dag_bag = importlib.import_module("airflow.models.dagbag").DagBag  # Airflow 2
    kwargs: dict[str, Any] = {"dag_folder": str(dags_folder), "include_examples": False}
    try:
        return dag_bag(**kwargs)
    except TypeError:  # Airflow 3.3 dropped include_examples (examples follow [core] load_examples)
        kwargs.pop("include_examples")
        return dag_bag(**kwargs)
