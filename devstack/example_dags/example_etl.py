"""A small ETL whose ``load`` task writes the ``warehouse_orders`` table (mapped in Dagster)."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(dag_id="example_etl", schedule=None, catchup=False, tags=["airstream-example"])
def example_etl() -> None:
    @task
    def extract() -> list[int]:
        return [3, 1, 2]

    @task
    def transform(rows: list[int]) -> list[int]:
        return sorted(rows)

    @task
    def load(rows: list[int]) -> int:
        print(f"loaded {len(rows)} rows into warehouse_orders")
        return len(rows)

    load(transform(extract()))


example_etl()
