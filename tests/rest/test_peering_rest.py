"""Peering against real Airflow 3.3 (REST v2) and 2.11 (REST v1): the observation DAGs and the asset
``s3://warehouse/orders.parquet`` with its lineage; a reload uses the cache (no request reaches the
counting proxy); a refresh (the refresh job, the UI's one click) asks Airflow again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import AssetKey, AssetSpec, DagsterInstance, Definitions, instance_for_test

from airstream.dagster_consumer import (
    AirflowFilter,
    AirflowInstance,
    assets_with_task_mappings,
    build_defs_from_airflow_instance,
)
from devstack.rest_stack import RestAirflow

pytestmark = pytest.mark.integration

ORDERS = AssetKey(["s3", "warehouse", "orders_parquet"])
WRITTEN = AssetKey("orders_written")


@pytest.fixture
def dagster_instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


def load(af: RestAirflow) -> Definitions:
    """What a code location does on each load: a new AirflowInstance, the same definitions."""
    return build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name=af.name, auth_backend=af.auth_backend()),
        defs=Definitions(
            assets=assets_with_task_mappings(
                dag_id="observe_asset_producer", task_mappings={"write_orders": [AssetSpec(WRITTEN)]}
            )
        ),
        airflow_filter=AirflowFilter(dag_id_pattern="observe_*"),
    )


@pytest.mark.parametrize("airflow_fixture", ["airflow3_rest", "airflow2_rest"])
def test_peering_lists_dags_and_assets_then_caches_until_refresh(
    request: pytest.FixtureRequest, airflow_fixture: str, dagster_instance: DagsterInstance
) -> None:
    af: RestAirflow = request.getfixturevalue(airflow_fixture)

    with af.proxy.counting() as first:
        defs = load(af)
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    print(f"{airflow_fixture}: first load made {first.total} request(s): {dict(first.counts)}")
    assert first.total > 0

    dag_ids = {key.path[2] for key in specs if key.path[:2] == [af.name, "dag"]}
    assert dag_ids == set(af.dag_ids)
    producer = specs[AssetKey([af.name, "dag", "observe_asset_producer"])]
    meta = {name: getattr(value, "value", value) for name, value in producer.metadata.items()}
    assert meta["airflow/fileloc"].endswith("observe_assets.py")
    expected_url = f"{af.url}/dags/observe_asset_producer" + ("/grid" if af.major == 2 else "")
    assert meta["airflow/dag_url"] == expected_url
    assert [task["task_id"] for task in meta["airflow/tasks"]] == ["write_orders"]  # a DAG with task mappings
    assert meta["airflow/version"].startswith(str(af.major))

    # The Airflow asset: produced by the mapped task's asset, consumed by observe_asset_consumer.
    orders = specs[ORDERS]
    assert {dep.asset_key for dep in orders.deps} == {WRITTEN}
    consumer = specs[AssetKey([af.name, "dag", "observe_asset_consumer"])]
    assert {dep.asset_key for dep in consumer.deps} == {ORDERS}

    # Loading again (a reload of the code location) uses the snapshot in the Dagster instance.
    with af.proxy.counting() as reload:
        again = load(af)
    assert reload.total == 0, dict(reload.counts)
    assert {spec.key for spec in again.resolve_all_asset_specs()} == set(specs)

    # The refresh job asks Airflow again and stores a new snapshot; the next load uses it, still without requests.
    with af.proxy.counting() as refresh:
        result = again.resolve_job_def(f"{af.name}__airflow_peering_refresh").execute_in_process(
            instance=dagster_instance
        )
    assert result.success
    assert refresh.total > 0
    with af.proxy.counting() as after:
        load(af)
    assert after.total == 0, dict(after.counts)
