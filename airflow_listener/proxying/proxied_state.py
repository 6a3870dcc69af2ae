"""The proxied state: which Airflow tasks (or whole DAGs) run in Dagster, one YAML file per DAG.

A folder holds ``<dag_id>.yaml`` for each DAG being migrated. Task level::

    tasks:
      - id: extract
        proxied: false
      - id: load
        proxied: true

DAG level (the whole DAG runs in Dagster as one task)::

    proxied: true

Rolling back is changing ``true`` to ``false``. A DAG without a file is left as it is. Every
problem is a :class:`ProxiedStateError` naming the file and the line, raised while the DAG file
imports, so it shows as an import error in Airflow's UI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ProxiedStateError(ValueError):
    """A proxied-state file is malformed, has both forms, or names a task its DAG lacks."""

    def __init__(self, path: Path | str, line: int | None, problem: str) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path = Path(path)
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class DagProxiedState:
    """One DAG's proxied state, read from ``path``.

    ``proxied`` is set for the DAG-level form (``True``: the whole DAG runs in Dagster); ``tasks``
    maps task ids to their state for the task-level form. ``lines`` keeps each task's line, for
    errors found later (a task the DAG does not have).
    """

    dag_id: str
    path: Path
    proxied: bool | None = None
    tasks: Mapping[str, bool] = field(default_factory=dict)
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def is_dag_level(self) -> bool:
        return self.proxied is not None

    def proxied_task_ids(self) -> list[str]:
        """The ids of the tasks marked ``proxied: true`` (task-level form), in file order."""
        return [task_id for task_id, proxied in self.tasks.items() if proxied]

    def check_tasks_exist(self, task_ids: set[str]) -> None:
        """Raise :class:`ProxiedStateError` for the first task in the file the DAG does not hold."""
        for task_id, line in self.lines.items():
            if task_id not in task_ids:
                known = ", ".join(sorted(task_ids)) or "none"
                raise ProxiedStateError(
                    self.path,
                    line,
                    f"task {task_id!r} is not a task of DAG {self.dag_id!r} (its tasks: {known}); "
                    f"fix the id or remove the entry",
                )


@dataclass(frozen=True)
class ProxiedState:
    """The proxied state of every DAG that has a file in the folder, by DAG id.

    ``errors`` holds, by DAG id, the problem of each file that could not be read; it is raised
    by :meth:`for_dag` for that DAG only, so a typo in one DAG's file fails that DAG's import and
    leaves the other DAGs of the folder alone.
    """

    dags: Mapping[str, DagProxiedState] = field(default_factory=dict)
    errors: Mapping[str, ProxiedStateError] = field(default_factory=dict)

    def for_dag(self, dag_id: str) -> DagProxiedState | None:
        """The DAG's state, ``None`` without a file; raises :class:`ProxiedStateError` when its file is malformed."""
        if dag_id in self.errors:
            raise self.errors[dag_id]
        return self.dags.get(dag_id)


def load_proxied_state_from_yaml(proxied_yaml_path: Path | str) -> ProxiedState:
    """Read every ``<dag_id>.yaml`` (or ``.yml``) of a folder.

    Example (at the end of a DAG file)::

        from pathlib import Path
        from airstream.airflow_listener.proxying import load_proxied_state_from_yaml, proxying_to_dagster

        proxying_to_dagster(
            global_vars=globals(),
            proxied_state=load_proxied_state_from_yaml(Path(__file__).parent / "proxied_state"),
        )

    Raises :class:`ProxiedStateError` for a missing folder. A malformed file, or a second file for
    the same DAG, is a :class:`ProxiedStateError` (file, line, problem) raised when that DAG's
    state is asked for (:meth:`ProxiedState.for_dag`), so it fails that DAG's import only.
    """
    folder = Path(proxied_yaml_path)
    if not folder.is_dir():
        raise ProxiedStateError(
            folder, None, "the proxied-state folder does not exist; create it, e.g. with `airstream proxy scaffold`"
        )
    dags: dict[str, DagProxiedState] = {}
    errors: dict[str, ProxiedStateError] = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        dag_id = path.stem
        if dag_id in dags or dag_id in errors:
            first = dags[dag_id].path if dag_id in dags else errors[dag_id].path
            errors[dag_id] = ProxiedStateError(path, None, f"DAG {dag_id!r} already has a file, {first}")
            continue
        try:
            dags[dag_id] = parse_dag_proxied_state(dag_id, path.read_text(), path)
        except ProxiedStateError as error:
            errors[dag_id] = error
    for dag_id in errors:
        dags.pop(dag_id, None)
    return ProxiedState(dags=dags, errors=errors)


def parse_dag_proxied_state(dag_id: str, text: str, path: Path | str = "<string>") -> DagProxiedState:
    """Parse one DAG's proxied-state document; ``path`` only names it in errors.

    Example::

        parse_dag_proxied_state("etl", "tasks:\\n  - id: load\\n    proxied: true\\n").proxied_task_ids()
        # ["load"]
    """
    path = Path(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        raise ProxiedStateError(path, line, f"not valid YAML: {error.problem or error}") from None
    if root is None:
        raise ProxiedStateError(path, 1, "the file is empty; write `proxied: false` or a `tasks:` list")
    if not isinstance(root, yaml.MappingNode):
        raise ProxiedStateError(path, _line(root), "expected a mapping with `tasks:` or `proxied:` at the top")
    top = _mapping(root, path)
    unknown = [key for key in top if key not in ("tasks", "proxied")]
    if unknown:
        key_node, _ = top[unknown[0]]
        raise ProxiedStateError(
            path, _line(key_node), f"unknown key {unknown[0]!r}; only `tasks:` (task level) or `proxied:` (DAG level)"
        )
    if "tasks" in top and "proxied" in top:
        second = max(top.values(), key=lambda pair: pair[0].start_mark.line)[0]
        raise ProxiedStateError(
            path,
            _line(second),
            "both `tasks:` (task level) and `proxied:` (DAG level); keep one: proxy the whole DAG or chosen tasks",
        )
    if "proxied" in top:
        return DagProxiedState(dag_id=dag_id, path=path, proxied=_bool(top["proxied"][1], path, "proxied"))
    if "tasks" not in top:
        raise ProxiedStateError(path, _line(root), "expected `tasks:` (task level) or `proxied:` (DAG level)")
    tasks_node = top["tasks"][1]
    if not isinstance(tasks_node, yaml.SequenceNode):
        raise ProxiedStateError(
            path, _line(tasks_node), "`tasks:` must be a list of `- id: ...` / `proxied: ...` items"
        )
    tasks: dict[str, bool] = {}
    lines: dict[str, int] = {}
    for item in tasks_node.value:
        if not isinstance(item, yaml.MappingNode):
            raise ProxiedStateError(path, _line(item), "each task is a mapping `{id: <task id>, proxied: true|false}`")
        entry = _mapping(item, path)
        if set(entry) != {"id", "proxied"}:
            raise ProxiedStateError(
                path,
                _line(item),
                f"a task needs exactly the keys `id` and `proxied`, found: {', '.join(entry) or 'none'}",
            )
        id_node = entry["id"][1]
        task_id = _scalar(id_node)
        if not isinstance(task_id, str) or not task_id:
            raise ProxiedStateError(path, _line(id_node), f"`id` must be a task id (a string), got {task_id!r}")
        if task_id in tasks:
            raise ProxiedStateError(
                path, _line(id_node), f"task {task_id!r} is listed twice (first on line {lines[task_id]})"
            )
        tasks[task_id] = _bool(entry["proxied"][1], path, "proxied")
        lines[task_id] = _line(id_node)
    return DagProxiedState(dag_id=dag_id, path=path, tasks=tasks, lines=lines)


def render_dag_proxied_state(task_ids: list[str], proxied: bool = False) -> str:
    """The task-level document for ``task_ids``, every task at ``proxied`` (what the scaffold writes)."""
    if not task_ids:
        return f"proxied: {'true' if proxied else 'false'}\n"
    lines = ["tasks:"]
    for task_id in task_ids:
        lines.append(f"  - id: {yaml.safe_dump(task_id, default_style=None).splitlines()[0]}")
        lines.append(f"    proxied: {'true' if proxied else 'false'}")
    return "\n".join(lines) + "\n"


def _mapping(node: yaml.MappingNode, path: Path) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    found: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = _scalar(key_node)
        if not isinstance(key, str):
            raise ProxiedStateError(path, _line(key_node), f"keys are names, got {key!r}")
        if key in found:
            raise ProxiedStateError(path, _line(key_node), f"key {key!r} appears twice")
        found[key] = (key_node, value_node)
    return found


def _scalar(node: yaml.Node) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        return node
    return yaml.SafeLoader("").construct_object(node)


def _bool(node: yaml.Node, path: Path, key: str) -> bool:
    value = _scalar(node)
    if not isinstance(value, bool):
        raise ProxiedStateError(path, _line(node), f"`{key}` must be true or false, got {value!r}")
    return value


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1
