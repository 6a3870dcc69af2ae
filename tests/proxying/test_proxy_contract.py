"""The proxied marker through the contract and the translation: what a proxied task or DAG records."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest
from dagster import AssetKey, AssetMaterialization, AssetSpec, DailyPartitionsDefinition, Definitions, asset

from airstream.airflow_listener.proxying.dagster_client import ProxyJob
from airstream.airflow_listener.proxying.operators import DagsterProxyError, partition_key
from airstream.dagster_consumer import AssetMappings, assets_with_dag_mappings, assets_with_task_mappings
from airstream.dagster_consumer.dag_history import RunTaskStates
from airstream.dagster_consumer.proxy_jobs import build_proxy_job_defs
from airstream.dagster_consumer.translate import translate
from airstream.schemas import DagRunEvent, EventType, TaskInstanceEvent, parse_event, serialize_event
from airstream.schemas.proxying import DAG_PROXY_TASK_ID, PROXIED_TASK_OPERATOR, proxy_job_name

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def _task(task_id: str = "load", state: str = "success", **fields: object) -> TaskInstanceEvent:
    return TaskInstanceEvent.new(
        instance="prod",
        event_type=EventType(f"task_instance.{state}"),
        state=state,
        dag_id="etl",
        run_id="manual__1",
        task_id=task_id,
        try_number=1,
        logical_date=T0,
        producer="test",
        **fields,
    )


def _run(task_ids: list[str], **fields: object) -> DagRunEvent:
    return DagRunEvent.new(
        instance="prod",
        event_type=EventType.DAG_RUN_SUCCESS,
        state="success",
        dag_id="etl",
        run_id="manual__1",
        task_ids=task_ids,
        producer="test",
        **fields,
    )


def test_the_marker_sets_the_field_when_a_producer_left_it_out_and_ids_do_not_change() -> None:
    plain = _task(operator="PythonOperator")
    rest_style = _task(operator=PROXIED_TASK_OPERATOR)  # the REST source copies the operator name only
    assert not plain.proxied_to_dagster and rest_style.proxied_to_dagster
    assert rest_style.event_id == plain.event_id  # the field is no part of the identity
    parsed = parse_event(serialize_event(rest_style))
    assert isinstance(parsed, TaskInstanceEvent) and parsed.proxied_to_dagster
    assert rest_style.schema_version == "1.2"
    assert _run([DAG_PROXY_TASK_ID]).proxied_to_dagster and not _run(["extract", "load"]).proxied_to_dagster


def test_a_proxied_task_records_nothing_on_its_assets_and_is_named_on_its_run() -> None:
    mappings = AssetMappings(by_task={("etl", "load"): [AssetKey("orders")]}, run_task_states=RunTaskStates())
    assert translate(_task(operator=PROXIED_TASK_OPERATOR), mappings=mappings) == []
    recorded = translate(_run(["load"]), mappings=mappings)
    assert [(type(e).__name__, e.asset_key) for e in recorded if isinstance(e, AssetMaterialization)] == [
        ("AssetMaterialization", AssetKey(["prod", "dag", "etl"]))
    ]
    (dag_record,) = (e for e in recorded if isinstance(e, AssetMaterialization))
    assert dag_record.metadata["airflow/proxied_to_dagster"].value == "load"

    rolled_back = translate(_task(operator="PythonOperator"), mappings=mappings)
    assert [e.asset_key for e in rolled_back if isinstance(e, AssetMaterialization)] == [AssetKey("orders")]


def test_a_dag_proxied_as_a_whole_does_not_materialize_its_dag_assets_again() -> None:
    mappings = AssetMappings(by_dag={"etl": [AssetKey("report")]}, run_task_states=RunTaskStates())
    proxied = translate(_run([DAG_PROXY_TASK_ID]), mappings=mappings)
    assert [e.asset_key for e in proxied if isinstance(e, AssetMaterialization)] == [AssetKey(["prod", "dag", "etl"])]
    observed = translate(_run(["build", "publish"]), mappings=mappings)
    assert AssetKey("report") in [e.asset_key for e in observed if isinstance(e, AssetMaterialization)]


def test_proxy_jobs_cover_executable_mapped_assets_only() -> None:
    @asset
    def orders() -> None: ...

    @asset(partitions_def=DailyPartitionsDefinition(start_date="2026-01-01"))
    def daily() -> None: ...

    @asset
    def report() -> None: ...

    @asset
    def plain() -> None: ...

    @asset(partitions_def=DailyPartitionsDefinition(start_date="2026-01-01"))
    def dated() -> None: ...

    defs = Definitions(
        assets=[
            *assets_with_task_mappings(
                dag_id="etl",
                task_mappings={"load": [orders], "group.daily": [daily], "observed": [AssetSpec("observed")]},
            ),
            *assets_with_task_mappings(dag_id="mixed", task_mappings={"both": [plain, dated]}),
            *assets_with_dag_mappings({"reports": [report]}),
        ]
    )
    names = sorted(job.name for job in build_proxy_job_defs(defs, "prod").jobs or [])
    assert names == sorted(
        [
            proxy_job_name("prod", "etl", "load"),
            proxy_job_name("prod", "etl", "group.daily"),
            proxy_job_name("prod", "reports"),
        ]
    )  # no job for an AssetSpec, nor for assets with different partitions


def test_job_names_are_valid_and_distinct() -> None:
    assert proxy_job_name("prod", "etl", "load") == "airstream_proxy__prod__etl__load"
    assert proxy_job_name("prod", "etl") == "airstream_proxy__prod__etl"
    dotted, underscored = proxy_job_name("prod", "etl", "group.load"), proxy_job_name("prod", "etl", "group_load")
    assert dotted != underscored and dotted.startswith("airstream_proxy__prod__etl__group_load__")
    # The separator inside an id cannot make two different (instance, DAG, task) meet.
    names = {
        proxy_job_name("a", "b__c", "d"),
        proxy_job_name("a", "b", "c__d"),
        proxy_job_name("a__b", "c", "d"),
        proxy_job_name("a", "b__c__d"),
        proxy_job_name("a", "b", "c"),
        proxy_job_name("b", "a", "c"),
    }
    assert len(names) == 6 and all(name.isidentifier() for name in names)


def test_the_partition_is_the_logical_date_in_the_partitions_format() -> None:
    daily = ProxyJob("j", "repo", "loc", partition_formats=("%Y-%m-%d",), partition_types=("TIME_WINDOW",))
    assert partition_key(daily, datetime(2026, 1, 5, tzinfo=timezone.utc)) == "2026-01-05"
    assert partition_key(ProxyJob("j", "repo", "loc"), None) is None
    with pytest.raises(DagsterProxyError, match="no logical date"):
        partition_key(daily, None)
    static = ProxyJob("j", "repo", "loc", partition_formats=(None,), partition_types=("STATIC",))
    with pytest.raises(DagsterProxyError, match="one time-window partitions definition"):
        partition_key(static, T0)


def test_the_rest_source_reports_proxied_tasks_and_dags_from_the_operator_name() -> None:
    from dataclasses import replace

    from airstream.dagster_consumer.sources.rest import RestEventSource
    from devstack.fake_rest import FakeRestApi, run_record, ti_record

    proxied = replace(ti_record("load", "success"), operator=PROXIED_TASK_OPERATOR)
    plain = replace(ti_record("extract", "success"), operator="PythonOperator")
    whole = replace(ti_record(DAG_PROXY_TASK_ID, "success", dag_id="reports"), operator="ProxyDAGToDagster")
    assert proxied.proxied_to_dagster and not plain.proxied_to_dagster
    api = FakeRestApi(runs=[run_record("etl"), run_record("reports")], task_instances=[proxied, plain, whole])
    events = (
        RestEventSource(api, "prod", clock=lambda: datetime(2026, 3, 1, 13, 0, tzinfo=timezone.utc)).read(None).events
    )
    tasks = {(e.dag_id, e.task_id): e.proxied_to_dagster for e in events if isinstance(e, TaskInstanceEvent)}
    assert tasks == {("etl", "load"): True, ("etl", "extract"): False, ("reports", DAG_PROXY_TASK_ID): True}
    runs = {e.dag_id: e.proxied_to_dagster for e in events if isinstance(e, DagRunEvent)}
    assert runs == {"etl": False, "reports": True}


def _kafka_instance(name: str) -> Any:
    from airstream.dagster_consumer import AirflowInstance, KafkaEventSource

    return AirflowInstance(name=name, event_source=KafkaEventSource(bootstrap_servers="127.0.0.1:1", topic="t"))


def test_the_definitions_builder_adds_the_proxy_jobs_itself() -> None:
    """No Dagster-side step besides mapping executable assets: the event path's definitions hold the jobs."""
    from airstream.dagster_consumer import build_defs_from_airflow_instance

    @asset
    def orders_table() -> None: ...

    @asset
    def report() -> None: ...

    mapped = Definitions(
        assets=[
            *assets_with_task_mappings(
                dag_id="etl", task_mappings={"load": [orders_table], "observed": [AssetSpec("observed_table")]}
            ),
            *assets_with_dag_mappings({"reports": [report]}),
        ]
    )
    defs = build_defs_from_airflow_instance(airflow_instance=_kafka_instance("prod"), defs=mapped)
    job = defs.resolve_job_def(proxy_job_name("prod", "etl", "load"))
    assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == {"orders_table"}
    assert job.tags["airstream/airflow_instance"] == "prod"
    whole = defs.resolve_job_def(proxy_job_name("prod", "reports"))
    assert {key.to_user_string() for key in whole.asset_layer.selected_asset_keys} == {"report"}
    names = {job.name for job in defs.resolve_all_job_defs()}
    assert proxy_job_name("prod", "etl", "observed") not in names  # an AssetSpec is observed, never run

    specs_only = Definitions(assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("t")]}))
    observed = build_defs_from_airflow_instance(airflow_instance=_kafka_instance("prod"), defs=specs_only)
    assert not [job for job in observed.resolve_all_job_defs() if job.name.startswith("airstream_proxy__")]


def test_two_instances_with_the_same_dag_and_task_ids_get_distinct_jobs_in_one_definitions() -> None:
    """Federation: ``etl.load`` on two Airflows, each mapped to its own executable asset."""
    from airstream.dagster_consumer import build_defs_from_airflow_instance

    @asset
    def eu_orders() -> None: ...

    @asset
    def us_orders() -> None: ...

    def observed(name: str, mapped_asset: Any) -> Definitions:
        return build_defs_from_airflow_instance(
            airflow_instance=_kafka_instance(name),
            defs=Definitions(assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [mapped_asset]})),
        )

    defs = Definitions.merge(observed("eu", eu_orders), observed("us", us_orders))
    for name, key in (("eu", "eu_orders"), ("us", "us_orders")):
        job = defs.resolve_job_def(proxy_job_name(name, "etl", "load"))
        assert {k.to_user_string() for k in job.asset_layer.selected_asset_keys} == {key}
    assert proxy_job_name("eu", "etl", "load") != proxy_job_name("us", "etl", "load")


def test_proxy_jobs_come_with_peering_definitions() -> None:
    """The peering path (REST access: DAG assets from Airflow, the refresh job) adds the jobs too."""
    from dagster import build_defs_for_component, instance_for_test

    from airstream.dagster_consumer.peering.loader import AirflowPeering
    from devstack.fake_peering_api import FakeAirflowApi

    @asset
    def orders_table() -> None: ...

    mapped = Definitions(assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [orders_table]}))
    with instance_for_test():
        peering = AirflowPeering(airflow_instance=_kafka_instance("prod"), defs=mapped, rest_api=FakeAirflowApi())
        defs = build_defs_for_component(peering)
        job = defs.resolve_job_def(proxy_job_name("prod", "etl", "load"))
        assert {key.to_user_string() for key in job.asset_layer.selected_asset_keys} == {"orders_table"}
        assert AssetKey(["prod", "dag", "etl"]) in {spec.key for spec in defs.resolve_all_asset_specs()}
        defs.resolve_job_def("prod__airflow_peering_refresh")  # still there beside the proxy jobs
