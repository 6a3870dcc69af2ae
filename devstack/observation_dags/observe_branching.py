"""An Airflow DAG that succeeds with states the scheduler decides alone: an EmptyOperator start and join, a branch
not taken, a short-circuit skip, and a task group with a dynamically mapped task."""

from __future__ import annotations

from _compat import DAG, START, TAGS, BranchPythonOperator, EmptyOperator, ShortCircuitOperator, task, task_group

with DAG(dag_id="observe_branching", schedule=None, catchup=False, start_date=START, tags=TAGS):
    start = EmptyOperator(task_id="start")
    branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "left")

    @task
    def left() -> str:
        return "taken"

    @task
    def right() -> str:
        return "never runs: the branch picks left"

    join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
    stop_here = ShortCircuitOperator(task_id="stop_here", python_callable=lambda: False)
    after_stop = EmptyOperator(task_id="after_stop")

    @task_group
    def regions() -> None:
        @task
        def process(region: str) -> str:
            return f"processed {region}"

        process.expand(region=["eu", "us", "apac"])

    start >> branch >> [left(), right()] >> join >> stop_here >> after_stop
    start >> regions()
