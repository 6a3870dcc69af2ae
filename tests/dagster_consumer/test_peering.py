"""Peering with a fake REST API: DAG specs and their facts, filters, Airflow asset lineage, the cache."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    AssetSpec,
    DagsterInstance,
    Definitions,
    SensorResult,
    build_defs_for_component,
    build_sensor_context,
    instance_for_test,
)

from airstream.dagster_consumer import (
    AirflowAssetKeys,
    AirflowInstance,
    EventBatch,
    EventSource,
    assets_with_task_mappings,
)
from airstream.dagster_consumer.peering.filter import AirflowFilter
from airstream.dagster_consumer.peering.loader import AirflowPeering, refresh_airflow_peering
from airstream.dagster_consumer.peering.snapshot import PeeringSnapshot, fetch_peering_snapshot
from airstream.schemas import DagRunEvent, EventType
from devstack.fake_peering_api import FakeAirflowApi

ORDERS = AssetKey(["s3", "warehouse", "orders_parquet"])


class NoEvents(EventSource):
    def read(self, position: dict | None) -> EventBatch:
        return EventBatch(events=[], position=position or {})

    def describe(self) -> str:
        return "nothing"


def instance(name: str = "prod") -> AirflowInstance:
    return AirflowInstance(name=name, event_source=NoEvents(), webserver_url="http://af:8080/")


def mapped_defs() -> Definitions:
    return Definitions(
        assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("orders_table")]})
    )


@pytest.fixture
def dagster_instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as dagster_instance:
        yield dagster_instance


def specs(defs: Definitions) -> dict[AssetKey, AssetSpec]:
    return {spec.key: spec for spec in defs.resolve_all_asset_specs()}


def meta(spec: AssetSpec, key: str) -> object:
    value = spec.metadata[key]
    return getattr(value, "value", value)


def load(api: FakeAirflowApi, **kwargs) -> Definitions:
    return build_defs_for_component(
        AirflowPeering(airflow_instance=instance(), defs=mapped_defs(), rest_api=api, **kwargs)
    )


def test_dags_become_assets_with_their_facts(dagster_instance: DagsterInstance) -> None:
    all_specs = specs(load(FakeAirflowApi()))

    etl = all_specs[AssetKey(["prod", "dag", "etl"])]
    metadata = {key: getattr(value, "value", value) for key, value in etl.metadata.items()}
    assert etl.description is not None and etl.description.startswith("Loads orders into the warehouse")
    assert metadata["airflow/owners"] == "data-eng"
    assert metadata["airflow/tags"] == ["warehouse", "daily"]
    assert metadata["airflow/schedule"] == "@daily"
    assert metadata["airflow/fileloc"] == "/dags/etl.py"
    assert metadata["airflow/dag_url"] == "http://af:8080/dags/etl"
    assert metadata["airflow/version"] == "3.3.2"
    assert metadata["airflow/tasks"] == [
        {
            "dag_id": "etl",
            "task_id": "extract",
            "operator": "PythonOperator",
            "downstream_task_ids": ["load"],
            "mapped_assets": [],
        },
        {
            "dag_id": "etl",
            "task_id": "load",
            "operator": "PythonOperator",
            "downstream_task_ids": [],
            "mapped_assets": ["orders_table"],
        },
    ]
    # Tasks are read only for DAGs with task mappings; inactive DAGs are left out.
    reports = all_specs[AssetKey(["prod", "dag", "reports"])]
    assert "airflow/tasks" not in reports.metadata
    assert AssetKey(["prod", "dag", "scratch_tmp"]) in all_specs
    assert AssetKey(["prod", "dag", "gone"]) not in all_specs


def test_airflow_2_links_to_the_grid(dagster_instance: DagsterInstance) -> None:
    etl = specs(load(FakeAirflowApi(airflow_version="2.11.2")))[AssetKey(["prod", "dag", "etl"])]
    assert meta(etl, "airflow/dag_url") == "http://af:8080/dags/etl/grid"


def test_airflow_assets_carry_producers_and_consumers(dagster_instance: DagsterInstance) -> None:
    all_specs = specs(load(FakeAirflowApi()))

    orders = all_specs[ORDERS]
    # Produced by etl.load, which is task-mapped: the mapped asset is upstream, not the whole DAG.
    assert {dep.asset_key for dep in orders.deps} == {AssetKey("orders_table")}
    assert meta(orders, "airflow/asset_uri") == "s3://warehouse/orders.parquet"
    reports = all_specs[AssetKey(["prod", "dag", "reports"])]
    assert {dep.asset_key for dep in reports.deps} == {ORDERS}
    # An unmapped producer: the producing DAG's asset is upstream.
    scratch = all_specs[AssetKey(["s3", "scratch", "tmp_csv"])]
    assert {dep.asset_key for dep in scratch.deps} == {AssetKey(["prod", "dag", "scratch_tmp"])}


def test_user_keys_for_airflow_assets(dagster_instance: DagsterInstance) -> None:
    all_specs = specs(
        load(FakeAirflowApi(), airflow_asset_keys=AirflowAssetKeys(keys={"s3://warehouse/orders.parquet": "orders"}))
    )
    assert AssetKey("orders") in all_specs and ORDERS not in all_specs
    assert {dep.asset_key for dep in all_specs[AssetKey(["prod", "dag", "reports"])].deps} == {AssetKey("orders")}


@pytest.mark.parametrize(
    ("airflow_filter", "expected"),
    [
        (AirflowFilter(dag_id_pattern="re*"), {"etl", "reports"}),  # etl stays: assets are mapped to it
        (AirflowFilter(tags=["scratch", "bi"]), {"etl", "reports", "scratch_tmp"}),
        (AirflowFilter(dag_id_pattern="nothing_*"), {"etl"}),
        (AirflowFilter(include_inactive=True), {"etl", "reports", "scratch_tmp", "gone"}),
    ],
)
def test_filters(dagster_instance: DagsterInstance, airflow_filter: AirflowFilter, expected: set[str]) -> None:
    all_specs = specs(load(FakeAirflowApi(), airflow_filter=airflow_filter))
    dag_ids = {key.path[2] for key in all_specs if key.path[:2] == ["prod", "dag"]}
    assert dag_ids == expected


def test_filtered_out_producers_are_not_linked(dagster_instance: DagsterInstance) -> None:
    all_specs = specs(load(FakeAirflowApi(), airflow_filter=AirflowFilter(dag_id_pattern="etl")))
    assert all_specs[AssetKey(["s3", "scratch", "tmp_csv"])].deps == []
    assert AssetKey(["prod", "dag", "reports"]) not in all_specs


def test_without_airflow_assets(dagster_instance: DagsterInstance) -> None:
    api = FakeAirflowApi()
    all_specs = specs(load(api, airflow_filter=AirflowFilter(retrieve_airflow_assets=False)))
    assert ORDERS not in all_specs
    assert api.calls["list_assets"] == 0


def test_asset_uri_pattern(dagster_instance: DagsterInstance) -> None:
    all_specs = specs(load(FakeAirflowApi(), airflow_filter=AirflowFilter(asset_uri_pattern="s3://warehouse/*")))
    assert ORDERS in all_specs and AssetKey(["s3", "scratch", "tmp_csv"]) not in all_specs


def test_a_second_load_uses_the_cache_and_a_refresh_calls_airflow(dagster_instance: DagsterInstance) -> None:
    api = FakeAirflowApi()
    first = load(api)
    calls_after_first = api.total
    assert calls_after_first == 4  # server_info, list_dags, list_tasks for the one mapped DAG, list_assets
    assert api.calls["list_tasks:etl"] == 1 and api.calls["list_tasks:reports"] == 0

    second = load(api)
    assert api.total == calls_after_first
    assert specs(second).keys() == specs(first).keys()

    # Airflow changes; a reload still shows the cached DAGs, a refresh shows the new ones.
    api.dags = [*api.dags, api.dags[0].__class__(dag_id="new_dag")]
    assert AssetKey(["prod", "dag", "new_dag"]) not in specs(load(api))
    assert api.total == calls_after_first

    peering = AirflowPeering(airflow_instance=instance(), defs=mapped_defs(), rest_api=api)
    result = refresh_airflow_peering(peering, instance=dagster_instance)
    assert api.total == 2 * calls_after_first
    assert "new_dag" in {dag.dag_id for dag in result.snapshot.dags}
    assert AssetKey(["prod", "dag", "new_dag"]) in specs(load(api))
    assert api.total == 2 * calls_after_first


def test_the_cache_is_per_instance_name(dagster_instance: DagsterInstance) -> None:
    api = FakeAirflowApi()
    build_defs_for_component(AirflowPeering(airflow_instance=instance("prod"), rest_api=api))
    build_defs_for_component(AirflowPeering(airflow_instance=instance("staging"), rest_api=api))
    assert api.calls["list_dags"] == 2


def test_the_refresh_job_refreshes(dagster_instance: DagsterInstance) -> None:
    api = FakeAirflowApi()
    defs = load(api)
    calls = api.total
    result = defs.resolve_job_def("prod__airflow_peering_refresh").execute_in_process(instance=dagster_instance)
    assert result.success
    assert api.total == 2 * calls


def test_airflow_down_at_first_load_still_observes_events(dagster_instance: DagsterInstance) -> None:
    class Down(FakeAirflowApi):
        def list_dags(self):  # type: ignore[override]
            raise ConnectionError("connection refused")

    defs = load(Down())
    assert set(specs(defs)) == {
        AssetKey("orders_table"),
        AssetKey(["prod", "dag", "etl"]),
        AssetKey(["prod", "airstream_health"]),
    }
    assert defs.resolve_sensor_def("prod__airflow_event_sensor") is not None


def test_snapshot_round_trips() -> None:
    snapshot = fetch_peering_snapshot(FakeAirflowApi(), instance_name="prod", task_dag_ids={"etl"})
    assert PeeringSnapshot.from_json(snapshot.to_json()) == snapshot


def test_dags_first_seen_in_events_need_no_refresh(dagster_instance: DagsterInstance) -> None:
    """A DAG Airflow did not list when peering ran still gets its records, under [instance, "dag", dag_id]."""
    load(FakeAirflowApi())  # the snapshot: etl, reports, scratch_tmp
    event = DagRunEvent.new(
        instance="prod",
        event_type=EventType.DAG_RUN_SUCCESS,
        state=EventType.DAG_RUN_SUCCESS.state,
        dag_id="born_yesterday",
        run_id="r1",
        producer="airstream/test",
    )

    class OneEvent(NoEvents):
        def read(self, position: dict | None) -> EventBatch:
            return EventBatch(events=[] if position else [event], position={"read": True})

    peering = AirflowPeering(
        airflow_instance=AirflowInstance(name="prod", event_source=OneEvent()),
        defs=mapped_defs(),
        rest_api=FakeAirflowApi(),
    )
    defs = build_defs_for_component(peering)
    assert AssetKey(["prod", "dag", "born_yesterday"]) not in specs(defs)
    sensor = defs.resolve_sensor_def("prod__airflow_event_sensor")
    result = sensor(build_sensor_context(instance=dagster_instance))
    assert isinstance(result, SensorResult)
    records = [e for e in result.asset_events if not isinstance(e, AssetCheckEvaluation)]
    checks = [e for e in result.asset_events if isinstance(e, AssetCheckEvaluation)]
    assert [e.asset_key for e in records] == [AssetKey(["prod", "dag", "born_yesterday"])]
    assert [(e.asset_key, e.check_name, e.passed) for e in checks] == [
        (AssetKey(["prod", "dag", "born_yesterday"]), "airflow_run_succeeded", True)
    ]


DEFS_FILE = """
from dagster import build_defs_for_component
from airstream.dagster_consumer import AirflowInstance
from airstream.dagster_consumer.peering.loader import AirflowPeering
from airstream.dagster_consumer.sources.rest import RestEventSource
from devstack.fake_peering_api import SHARED_FAKE_API

defs = build_defs_for_component(
    AirflowPeering(
        airflow_instance=AirflowInstance(name="clitest", event_source=RestEventSource(SHARED_FAKE_API, "clitest")),
        rest_api=SHARED_FAKE_API,
    )
)
"""


def test_the_refresh_command(dagster_instance: DagsterInstance, tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    from airstream.dagster_consumer.peering.cli import main
    from devstack.fake_peering_api import SHARED_FAKE_API

    (tmp_path / "clitest_defs.py").write_text(DEFS_FILE)
    SHARED_FAKE_API.calls.clear()
    assert main(["peering", "refresh", "-f", str(tmp_path / "clitest_defs.py")]) == 0
    assert SHARED_FAKE_API.calls["list_dags"] == 1  # the load did not fetch; the refresh did, once
    assert "peered with Airflow instance 'clitest'" in capsys.readouterr().out
    assert main(["peering", "refresh", "-f", str(tmp_path / "clitest_defs.py"), "--instance", "other"]) == 1
