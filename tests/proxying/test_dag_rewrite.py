"""proxying_to_dagster, parsed by a real Airflow 3.3: what a proxied DAG holds, and import errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from airstream.schemas.proxying import DAG_PROXY_TASK_ID, PROXIED_DAG_OPERATOR, PROXIED_TASK_OPERATOR

Parse = Callable[..., dict[str, Any]]


def test_proxied_tasks_keep_their_id_dependencies_and_retries(proxy_dags: Path, parse_dags: Parse) -> None:
    parsed = parse_dags(proxy_dags)
    assert parsed["errors"] == {}
    etl = parsed["dags"]["proxy_etl"]
    assert sorted(etl) == ["daily_report", "extract", "flaky", "load"]
    assert etl["extract"]["task_type"] == "_PythonDecoratedOperator"  # proxied: false stays as written
    load = etl["load"]
    assert load["task_type"] == load["operator_name"] == PROXIED_TASK_OPERATOR
    assert load["class"] == "DefaultProxyTaskToDagsterOperator"
    assert load["upstream"] == ["extract"] and etl["extract"]["downstream"] == ["daily_report", "flaky", "load"]
    assert (load["retries"], load["retry_delay"], load["on_failure_callback"]) == (2, 1.0, True)
    assert etl["flaky"]["retries"] == 1
    assert load["job"] == "airstream_proxy__airflow__proxy_etl__load"  # the default instance name


def test_a_dag_proxied_as_a_whole_holds_one_task(proxy_dags: Path, parse_dags: Parse) -> None:
    whole = parse_dags(proxy_dags)["dags"]["proxy_whole"]
    assert list(whole) == [DAG_PROXY_TASK_ID]
    assert whole[DAG_PROXY_TASK_ID]["task_type"] == PROXIED_DAG_OPERATOR
    assert whole[DAG_PROXY_TASK_ID]["job"] == "airstream_proxy__airflow__proxy_whole"


def test_the_proxy_jobs_are_named_after_the_configured_instance(proxy_dags: Path, parse_dags: Parse) -> None:
    parsed = parse_dags(proxy_dags, env={"AIRFLOW__AIRSTREAM__INSTANCE_NAME": "prod_eu"})
    assert parsed["dags"]["proxy_etl"]["load"]["job"] == "airstream_proxy__prod_eu__proxy_etl__load"
    assert parsed["dags"]["proxy_whole"][DAG_PROXY_TASK_ID]["job"] == "airstream_proxy__prod_eu__proxy_whole"

    invalid = parse_dags(proxy_dags, env={"AIRFLOW__AIRSTREAM__INSTANCE_NAME": "prod-eu"})
    assert "proxy_etl" not in invalid["dags"]
    assert (
        "[airstream] instance_name: instance name 'prod-eu' is invalid"
        in invalid["errors"][str(proxy_dags / "proxy_etl.py")]
    )


def test_a_custom_operator_class_builds_the_proxies(proxy_dags: Path, parse_dags: Parse) -> None:
    secured = parse_dags(proxy_dags)["dags"]["proxy_custom"]["secured"]
    assert secured["class"] == "ApiKeyProxyOperator"
    assert secured["task_type"] == PROXIED_TASK_OPERATOR  # the marker, whatever the subclass is called


def test_rolling_back_is_one_line(proxy_dags: Path, parse_dags: Parse) -> None:
    state = proxy_dags / "proxied_state"
    etl = state / "proxy_etl.yaml"
    etl.write_text(etl.read_text().replace("- id: load\n    proxied: true", "- id: load\n    proxied: false"))
    (state / "proxy_whole.yaml").write_text("proxied: false\n")
    dags = parse_dags(proxy_dags)["dags"]
    assert dags["proxy_etl"]["load"]["task_type"] == "_PythonDecoratedOperator"
    assert dags["proxy_etl"]["daily_report"]["task_type"] == PROXIED_TASK_OPERATOR
    assert sorted(dags["proxy_whole"]) == ["build", "publish"]
    assert dags["proxy_whole"]["build"]["downstream"] == ["publish"]


def test_a_dag_without_a_state_file_is_left_untouched(proxy_dags: Path, parse_dags: Parse) -> None:
    (proxy_dags / "proxied_state" / "proxy_whole.yaml").unlink()
    assert sorted(parse_dags(proxy_dags)["dags"]["proxy_whole"]) == ["build", "publish"]


def test_malformed_yaml_is_an_import_error_naming_the_file_and_line(proxy_dags: Path, parse_dags: Parse) -> None:
    bad = proxy_dags / "proxied_state" / "proxy_etl.yaml"
    bad.write_text("tasks:\n  - id: extract\n    proxied: false\n  - id: lod\n    proxied: true\n")
    parsed = parse_dags(proxy_dags)
    assert "proxy_etl" not in parsed["dags"]
    error = parsed["errors"][str(proxy_dags / "proxy_etl.py")]
    assert f"{bad}:4: task 'lod' is not a task of DAG 'proxy_etl'" in error

    bad.write_text("tasks:\n  - id: load\n    proxied: maybe\n")
    error = parse_dags(proxy_dags)["errors"][str(proxy_dags / "proxy_etl.py")]
    assert f"{bad}:3: `proxied` must be true or false, got 'maybe'" in error
