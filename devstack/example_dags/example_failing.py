"""A DAG whose ``flaky_call`` task always fails: one retry (up_for_retry), then failed."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task


@dag(
    dag_id="example_failing",
    schedule=None,
    catchup=False,
    tags=["airstream-example"],
    default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
)
def example_failing() -> None:
    @task
    def prepare() -> str:
        return "ready"

    @task
    def flaky_call(status: str) -> None:
        raise RuntimeError(f"the upstream service is down (status was {status!r})")

    flaky_call(prepare())


example_failing()
