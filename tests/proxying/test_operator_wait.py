"""The proxy operator's wait loop against a scripted client: Dagster's own retries, the time bound, kill."""

from __future__ import annotations

from typing import Any

import pytest

from airstream.airflow_listener.proxying import (
    DagsterProxyError,
    DagsterUnreachable,
    DefaultProxyTaskToDagsterOperator,
    RunStatus,
)


class ScriptedDagster:
    """Answers run_status from a script of statuses per run; retry_of from a map of parent → retry."""

    def __init__(self, statuses: dict[str, list[RunStatus]], retries: dict[str, RunStatus]) -> None:
        self.statuses = statuses
        self.retries = retries
        self.terminated: list[str] = []

    def run_status(self, run_id: str) -> RunStatus:
        script = self.statuses[run_id]
        answer = script.pop(0) if len(script) > 1 else script[0]
        if answer.status == "UNREACHABLE":
            raise DagsterUnreachable("Dagster at http://dagster/graphql did not answer")
        return answer

    def retry_of(self, run_id: str) -> RunStatus | None:
        return self.retries.get(run_id)

    def terminate_run(self, run_id: str) -> None:
        self.terminated.append(run_id)

    def run_url(self, run_id: str) -> str:
        return f"http://dagster/runs/{run_id}"


def _operator(**options: Any) -> DefaultProxyTaskToDagsterOperator:
    return DefaultProxyTaskToDagsterOperator(
        task_id="load", dagster_job_name="airstream_proxy__prod__etl__load", poll_interval=0.01, **options
    )


def test_a_failed_run_that_dagster_retries_is_followed_to_its_retry() -> None:
    failed = RunStatus("r1", "FAILURE", {"dagster/will_retry": "true"})
    client = ScriptedDagster(
        {"r1": [RunStatus("r1", "STARTED"), failed], "r2": [RunStatus("r2", "STARTED"), RunStatus("r2", "SUCCESS")]},
        {"r1": RunStatus("r2", "QUEUED", {"dagster/parent_run_id": "r1"})},
    )
    operator = _operator()
    assert operator._wait(client, "r1").run_id == "r2"  # type: ignore[arg-type]
    assert operator._wait(client, "r2").status == "SUCCESS"  # type: ignore[arg-type]


def test_a_failure_seen_before_dagster_tagged_it_will_retry_is_looked_at_again() -> None:
    """Dagster stores the failure first and the ``dagster/will_retry`` tag right after."""
    untagged = RunStatus("r1", "FAILURE")
    client = ScriptedDagster(
        {
            "r1": [untagged, RunStatus("r1", "FAILURE", {"dagster/will_retry": "true"})],
            "r2": [RunStatus("r2", "SUCCESS")],
        },
        {"r1": RunStatus("r2", "STARTED", {"dagster/parent_run_id": "r1"})},
    )
    assert _operator()._wait(client, "r1").run_id == "r2"  # type: ignore[arg-type]
    never_tagged = ScriptedDagster({"r1": [untagged]}, {})  # run retries disabled: no tag ever
    assert _operator()._wait(never_tagged, "r1").status == "FAILURE"  # type: ignore[arg-type]


def test_a_failed_run_without_a_retry_is_the_result() -> None:
    client = ScriptedDagster({"r1": [RunStatus("r1", "FAILURE", {"dagster/will_retry": "false"})]}, {})
    assert _operator()._wait(client, "r1").status == "FAILURE"  # type: ignore[arg-type]


def test_a_dagster_that_stops_answering_for_a_while_is_waited_for() -> None:
    away = RunStatus("r1", "UNREACHABLE")
    client = ScriptedDagster({"r1": [RunStatus("r1", "STARTED"), away, away, RunStatus("r1", "SUCCESS")]}, {})
    assert _operator()._wait(client, "r1").status == "SUCCESS"  # type: ignore[arg-type]


def test_the_wait_is_bounded() -> None:
    client = ScriptedDagster({"r1": [RunStatus("r1", "STARTED")]}, {})
    with pytest.raises(DagsterProxyError, match="did not finish within 0 s"):
        _operator(max_wait=0.05)._wait(client, "r1")  # type: ignore[arg-type]


def test_on_kill_terminates_the_current_dagster_run() -> None:
    client = ScriptedDagster({}, {})
    operator = _operator()
    operator.on_kill()  # nothing launched yet: nothing to terminate
    operator._client, operator._dagster_run_id = client, "r7"  # type: ignore[assignment]
    operator.on_kill()
    assert client.terminated == ["r7"]
