"""A DAG with a dynamically mapped task: one ``process_partition`` instance per partition."""

from __future__ import annotations

from airflow.sdk import dag, task


@dag(dag_id="example_mapped", schedule=None, catchup=False, tags=["airstream-example"])
def example_mapped() -> None:
    @task
    def list_partitions() -> list[str]:
        return ["2026-01", "2026-02", "2026-03"]

    @task
    def process_partition(partition: str) -> str:
        return f"processed {partition}"

    @task
    def publish(results: list[str]) -> None:
        print(f"published {len(results)} partitions")

    publish(process_partition.expand(partition=list_partitions()))


example_mapped()
