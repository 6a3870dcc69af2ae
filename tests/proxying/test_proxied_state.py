"""Reading the proxied-state YAML: both forms, and every malformed file named by file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from airstream.airflow_listener.proxying import ProxiedStateError, load_proxied_state_from_yaml
from airstream.airflow_listener.proxying.proxied_state import parse_dag_proxied_state, render_dag_proxied_state

TASK_LEVEL = """tasks:
  - id: extract
    proxied: false
  - id: load
    proxied: true
"""


def test_task_level_and_dag_level_files_are_read_per_dag(tmp_path: Path) -> None:
    (tmp_path / "etl.yaml").write_text(TASK_LEVEL)
    (tmp_path / "reports.yml").write_text("proxied: true\n")
    state = load_proxied_state_from_yaml(tmp_path)
    etl, reports = state.for_dag("etl"), state.for_dag("reports")
    assert etl is not None and reports is not None
    assert not etl.is_dag_level and etl.tasks == {"extract": False, "load": True}
    assert etl.proxied_task_ids() == ["load"]
    assert etl.lines == {"extract": 2, "load": 4}
    assert reports.is_dag_level and reports.proxied is True
    assert state.for_dag("untouched") is None


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("tasks:\n  - id: load\n    proxied: yes please\n", 3, "`proxied` must be true or false"),
        ("proxied: true\ntasks:\n  - id: load\n    proxied: true\n", 2, "both `tasks:` (task level) and `proxied:`"),
        ("tasks:\n  - id: load\n    proxied: [true\n", 4, "not valid YAML"),
        ("tasks:\n  - id: load\n    proxied: true\n  - id: load\n    proxied: false\n", 4, "listed twice"),
        ("tasks:\n  - id: load\n", 2, "exactly the keys `id` and `proxied`"),
        ("tasks: load\n", 1, "must be a list"),
        ("proxy: true\n", 1, "unknown key 'proxy'"),
        ("", 1, "the file is empty"),
        ("- load\n", 1, "expected a mapping"),
        ("proxied: 1\n", 1, "`proxied` must be true or false"),
    ],
)
def test_a_malformed_file_names_the_file_the_line_and_the_problem(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    (tmp_path / "etl.yaml").write_text(text)
    (tmp_path / "reports.yaml").write_text("proxied: true\n")
    state = load_proxied_state_from_yaml(tmp_path)
    reports = state.for_dag("reports")  # another DAG's file is still read: only etl fails
    assert reports is not None and reports.proxied is True
    with pytest.raises(ProxiedStateError) as raised:
        state.for_dag("etl")
    assert raised.value.path == tmp_path / "etl.yaml"
    assert raised.value.line == line
    assert problem in str(raised.value)
    assert str(raised.value).startswith(f"{tmp_path / 'etl.yaml'}:{line}: ")


def test_a_task_the_dag_does_not_have_is_named_with_its_line(tmp_path: Path) -> None:
    state = parse_dag_proxied_state("etl", TASK_LEVEL.replace("id: load", "id: laod"), tmp_path / "etl.yaml")
    with pytest.raises(ProxiedStateError, match=r"etl.yaml:4: task 'laod' is not a task of DAG 'etl'"):
        state.check_tasks_exist({"extract", "load"})


def test_a_missing_folder_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ProxiedStateError, match="airstream proxy scaffold"):
        load_proxied_state_from_yaml(tmp_path / "nowhere")


def test_the_rendered_document_reads_back_with_every_task_unproxied() -> None:
    text = render_dag_proxied_state(["extract", "group.load", "yes"])
    state = parse_dag_proxied_state("etl", text)
    assert state.tasks == {"extract": False, "group.load": False, "yes": False}


def test_two_files_for_one_dag_fail_that_dag_only(tmp_path: Path) -> None:
    (tmp_path / "etl.yaml").write_text("proxied: true\n")
    (tmp_path / "etl.yml").write_text("proxied: false\n")
    (tmp_path / "reports.yaml").write_text("proxied: true\n")
    state = load_proxied_state_from_yaml(tmp_path)
    with pytest.raises(ProxiedStateError, match=r"etl.yml: DAG 'etl' already has a file, .*etl.yaml"):
        state.for_dag("etl")
    assert state.for_dag("reports") is not None and state.for_dag("other") is None
