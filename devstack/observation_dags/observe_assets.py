"""An Airflow asset (a dataset on Airflow 2) produced by one DAG and consumed by another."""

from __future__ import annotations

from _compat import DAG, START, TAGS, Asset, task

ORDERS = Asset("s3://warehouse/orders.parquet")

with DAG(dag_id="observe_asset_producer", schedule=None, catchup=False, start_date=START, tags=TAGS):

    @task(outlets=[ORDERS])
    def write_orders() -> None:
        print("orders written")

    write_orders()

with DAG(dag_id="observe_asset_consumer", schedule=[ORDERS], catchup=False, start_date=START, tags=TAGS):

    @task
    def read_orders() -> None:
        print("orders read")

    read_orders()
