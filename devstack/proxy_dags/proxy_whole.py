"""A DAG proxied as a whole: with `proxied: true` its two tasks become one that runs the DAG's assets in Dagster."""

from __future__ import annotations

from _proxy_compat import DAG, PROXIED_STATE, START, task

from airstream.airflow_listener.proxying import load_proxied_state_from_yaml, proxying_to_dagster

with DAG(dag_id="proxy_whole", schedule=None, start_date=START, catchup=False, tags=["airstream-migration"]):

    @task
    def build() -> None:
        print("building in Airflow")

    @task
    def publish() -> None:
        print("publishing in Airflow")

    build() >> publish()


proxying_to_dagster(global_vars=globals(), proxied_state=load_proxied_state_from_yaml(PROXIED_STATE))
