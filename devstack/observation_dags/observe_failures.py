"""An Airflow DAG that fails, with the states that follow a failure: upstream_failed, and tasks that still run
because of their trigger rules (all_done, one_failed), around setup and teardown tasks."""

from __future__ import annotations

from _compat import DAG, START, TAGS, EmptyOperator, task

with DAG(dag_id="observe_failures", schedule=None, catchup=False, start_date=START, tags=TAGS):

    @task
    def create_cluster() -> str:
        return "cluster-1"

    @task
    def boom() -> None:
        raise RuntimeError("this task always fails")

    @task
    def delete_cluster() -> None:
        print("cluster deleted")

    setup = create_cluster().as_setup()
    failing = boom()
    teardown = delete_cluster().as_teardown(setups=setup)
    setup >> failing >> teardown

    after_boom = EmptyOperator(task_id="after_boom")
    cleanup = EmptyOperator(task_id="cleanup", trigger_rule="all_done")
    alert = EmptyOperator(task_id="alert", trigger_rule="one_failed")
    failing >> [after_boom, cleanup, alert]
