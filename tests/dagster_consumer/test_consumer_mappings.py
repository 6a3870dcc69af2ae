"""Unit tests of dagster_consumer.mappings, .definitions and .airflow_instance (no broker)."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DailyPartitionsDefinition,
    DefaultSensorStatus,
    Definitions,
    HourlyPartitionsDefinition,
    StaticPartitionsDefinition,
    asset,
)

from airstream.dagster_consumer import (
    AirflowAssetKeys,
    AirflowInstance,
    AssetMappings,
    InvalidInstanceName,
    KafkaEventSource,
    assets_with_dag_mappings,
    assets_with_multiple_task_mappings,
    assets_with_task_mappings,
    build_defs_from_airflow_instance,
    dag_asset_key,
)
from airstream.dagster_consumer.mappings import DAG_MAPPING_METADATA_KEY, TASK_MAPPING_METADATA_KEY
from airstream.dagster_consumer.observation_defs import build_observation_defs
from airstream.dagster_consumer.peering.snapshot import fetch_peering_snapshot
from airstream.schemas import validate_instance_name
from devstack.fake_peering_api import FakeAirflowApi


def unreachable_source() -> KafkaEventSource:
    # Never read in these tests: building definitions must not touch the broker.
    return KafkaEventSource(bootstrap_servers="127.0.0.1:1", topic="t")


def entries(value: Any) -> list[dict[str, str]]:
    return list(getattr(value, "value", value))


def spec_of(assets_def: AssetsDefinition) -> AssetSpec:
    (spec,) = assets_def.specs
    return spec


@asset
def warehouse_table() -> None: ...


# --- assets_with_task_mappings / assets_with_dag_mappings -----------------------------------


def test_task_mapping_on_asset_spec() -> None:
    (mapped,) = assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("warehouse")]})
    assert isinstance(mapped, AssetSpec)
    assert mapped.key == AssetKey("warehouse")
    assert entries(mapped.metadata[TASK_MAPPING_METADATA_KEY]) == [{"dag_id": "etl", "task_id": "load"}]
    assert "airflow" in mapped.kinds


def test_task_mapping_on_asset_decorated_definition() -> None:
    (mapped,) = assets_with_task_mappings(dag_id="etl", task_mappings={"load": [warehouse_table]})
    assert isinstance(mapped, AssetsDefinition)
    spec = spec_of(mapped)
    assert spec.key == AssetKey("warehouse_table")
    assert entries(spec.metadata[TASK_MAPPING_METADATA_KEY]) == [{"dag_id": "etl", "task_id": "load"}]
    # The original definition is left as it was.
    assert TASK_MAPPING_METADATA_KEY not in spec_of(warehouse_table).metadata


def test_task_mapping_keeps_existing_metadata() -> None:
    (mapped,) = assets_with_task_mappings(
        dag_id="etl", task_mappings={"load": [AssetSpec("warehouse", metadata={"owner_team": "data"})]}
    )
    assert mapped.metadata["owner_team"] == "data"
    assert TASK_MAPPING_METADATA_KEY in mapped.metadata


def test_several_tasks_and_assets_in_one_call() -> None:
    mapped = assets_with_task_mappings(
        dag_id="etl", task_mappings={"extract": [AssetSpec("raw")], "load": [AssetSpec("a"), AssetSpec("b")]}
    )
    assert [m.key for m in mapped] == [AssetKey("raw"), AssetKey("a"), AssetKey("b")]
    mappings = AssetMappings.from_definitions(Definitions(assets=mapped))
    assert mappings.by_task == {("etl", "extract"): [AssetKey("raw")], ("etl", "load"): [AssetKey("a"), AssetKey("b")]}


@pytest.mark.parametrize("asset_obj", [AssetSpec("warehouse_table"), warehouse_table], ids=["spec", "assets_def"])
def test_asset_mapped_to_two_tasks_keeps_both(asset_obj: Any) -> None:
    once = assets_with_task_mappings(dag_id="etl", task_mappings={"load": [asset_obj]})
    twice = assets_with_task_mappings(dag_id="audit", task_mappings={"check": once})
    (mapped,) = twice
    spec = mapped if isinstance(mapped, AssetSpec) else spec_of(mapped)
    assert entries(spec.metadata[TASK_MAPPING_METADATA_KEY]) == [
        {"dag_id": "etl", "task_id": "load"},
        {"dag_id": "audit", "task_id": "check"},
    ]
    mappings = AssetMappings.from_definitions(Definitions(assets=twice))
    assert mappings.by_task == {
        ("etl", "load"): [AssetKey("warehouse_table")],
        ("audit", "check"): [AssetKey("warehouse_table")],
    }
    assert mappings.dag_ids == {"etl", "audit"}


def test_mapping_the_same_task_twice_does_not_duplicate_the_asset() -> None:
    once = assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("warehouse")]})
    again = assets_with_task_mappings(dag_id="etl", task_mappings={"load": once})
    mappings = AssetMappings.from_definitions(Definitions(assets=again))
    # A duplicate key here would make every success of etl.load materialize warehouse twice.
    assert mappings.by_task == {("etl", "load"): [AssetKey("warehouse")]}


def test_dag_mapping_on_spec_and_assets_def() -> None:
    spec_mapped, def_mapped = assets_with_dag_mappings({"etl": [AssetSpec("report"), warehouse_table]})
    assert entries(spec_mapped.metadata[DAG_MAPPING_METADATA_KEY]) == [{"dag_id": "etl"}]
    assert entries(spec_of(def_mapped).metadata[DAG_MAPPING_METADATA_KEY]) == [{"dag_id": "etl"}]


def test_from_definitions_finds_task_and_dag_mappings() -> None:
    defs = Definitions(
        assets=[
            *assets_with_task_mappings(dag_id="etl", task_mappings={"load": [warehouse_table]}),
            *assets_with_dag_mappings({"reports": [AssetSpec("report")]}),
            AssetSpec("unmapped"),
        ]
    )
    mappings = AssetMappings.from_definitions(defs)
    assert mappings.by_task == {("etl", "load"): [AssetKey("warehouse_table")]}
    assert mappings.by_dag == {"reports": [AssetKey("report")]}
    assert mappings.dag_ids == {"etl", "reports"}


def test_from_definitions_of_empty_definitions() -> None:
    mappings = AssetMappings.from_definitions(Definitions())
    assert mappings.by_task == {}
    assert mappings.by_dag == {}
    assert mappings.dag_ids == set()


@pytest.mark.parametrize("dag_id", ["", None, 3])
def test_task_mapping_rejects_bad_dag_id(dag_id: Any) -> None:
    with pytest.raises(ValueError, match="dag_id must be a non-empty string"):
        assets_with_task_mappings(dag_id=dag_id, task_mappings={"load": [AssetSpec("a")]})


def test_task_mapping_rejects_empty_task_id() -> None:
    with pytest.raises(ValueError, match="task_id must be a non-empty string"):
        assets_with_task_mappings(dag_id="etl", task_mappings={"": [AssetSpec("a")]})


def test_dag_mapping_rejects_empty_dag_id() -> None:
    with pytest.raises(ValueError, match="dag_id must be a non-empty string"):
        assets_with_dag_mappings({"": [AssetSpec("a")]})


@pytest.mark.parametrize("bad", ["warehouse", AssetKey("warehouse"), object()], ids=["str", "key", "object"])
def test_mapping_rejects_non_asset_objects(bad: Any) -> None:
    with pytest.raises(TypeError, match="pass AssetSpec or AssetsDefinition"):
        assets_with_task_mappings(dag_id="etl", task_mappings={"load": [bad]})
    with pytest.raises(TypeError, match="pass AssetSpec or AssetsDefinition"):
        assets_with_dag_mappings({"etl": [bad]})


def test_dag_asset_key_form() -> None:
    assert dag_asset_key("prod", "etl") == AssetKey(["prod", "dag", "etl"])


# --- assets_with_multiple_task_mappings ---------------------------------------------------------


def test_multiple_task_mappings_signature_matches_airlift() -> None:
    # Airlift: assets_with_multiple_task_mappings(assets, task_handles) -> Sequence[...]
    assert list(inspect.signature(assets_with_multiple_task_mappings).parameters) == ["assets", "task_handles"]


@pytest.mark.parametrize("asset_obj", [AssetSpec("orders"), warehouse_table], ids=["spec", "assets_def"])
def test_multiple_task_mappings_map_each_asset_to_each_task(asset_obj: Any) -> None:
    (mapped,) = assets_with_multiple_task_mappings(
        assets=[asset_obj],
        task_handles=[{"dag_id": "daily", "task_id": "load"}, {"dag_id": "weekly", "task_id": "load"}],
    )
    spec = mapped if isinstance(mapped, AssetSpec) else spec_of(mapped)
    assert entries(spec.metadata[TASK_MAPPING_METADATA_KEY]) == [
        {"dag_id": "daily", "task_id": "load"},
        {"dag_id": "weekly", "task_id": "load"},
    ]
    mappings = AssetMappings.from_definitions(Definitions(assets=[mapped]))
    assert mappings.by_task == {("daily", "load"): [spec.key], ("weekly", "load"): [spec.key]}
    assert mappings.dag_ids == {"daily", "weekly"}


def test_multiple_task_mappings_keep_existing_mappings_and_skip_repeats() -> None:
    once = assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("orders")]})
    (mapped,) = assets_with_multiple_task_mappings(
        once, [{"dag_id": "etl", "task_id": "load"}, {"dag_id": "backfill", "task_id": "load"}]
    )
    assert entries(mapped.metadata[TASK_MAPPING_METADATA_KEY]) == [
        {"dag_id": "etl", "task_id": "load"},
        {"dag_id": "backfill", "task_id": "load"},
    ]


def test_multiple_task_mappings_of_several_assets() -> None:
    mapped = assets_with_multiple_task_mappings(
        [AssetSpec("a"), AssetSpec("b")], [{"dag_id": "d1", "task_id": "t"}, {"dag_id": "d2", "task_id": "t"}]
    )
    mappings = AssetMappings.from_definitions(Definitions(assets=mapped))
    assert mappings.by_task == {
        ("d1", "t"): [AssetKey("a"), AssetKey("b")],
        ("d2", "t"): [AssetKey("a"), AssetKey("b")],
    }


@pytest.mark.parametrize(
    ("handles", "message"),
    [
        ([], "task_handles is empty"),
        ([{"dag_id": "etl"}], "exactly the keys 'dag_id' and 'task_id'"),
        ([{"dag_id": "etl", "task_id": "t", "extra": 1}], "exactly the keys"),
        (["etl.load"], "exactly the keys"),
        ([{"dag_id": "", "task_id": "t"}], "dag_id must be a non-empty string"),
        ([{"dag_id": "etl", "task_id": None}], "task_id must be a non-empty string"),
    ],
)
def test_multiple_task_mappings_reject_bad_handles(handles: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        assets_with_multiple_task_mappings([AssetSpec("a")], handles)


def test_multiple_task_mappings_reject_non_assets() -> None:
    with pytest.raises(TypeError, match="pass AssetSpec or AssetsDefinition"):
        assets_with_multiple_task_mappings(["a"], [{"dag_id": "etl", "task_id": "t"}])  # type: ignore[list-item]


# --- partitions carried through AssetMappings --------------------------------------------------

DAILY = DailyPartitionsDefinition(start_date="2025-01-01")


@asset(partitions_def=HourlyPartitionsDefinition(start_date="2025-01-01-00:00"))
def hourly_table() -> None: ...


def test_time_window_partitions_are_carried_from_specs_and_asset_definitions() -> None:
    defs = Definitions(
        assets=[
            *assets_with_task_mappings(
                dag_id="etl", task_mappings={"load": [AssetSpec("daily", partitions_def=DAILY), hourly_table]}
            ),
            *assets_with_dag_mappings({"etl": [AssetSpec("plain")]}),
            AssetSpec("static", partitions_def=StaticPartitionsDefinition(["a", "b"])),
        ]
    )
    mappings = AssetMappings.from_definitions(defs)
    assert mappings.partitions[AssetKey("daily")] == DAILY
    assert isinstance(mappings.partitions[AssetKey("hourly_table")], HourlyPartitionsDefinition)
    assert AssetKey("plain") not in mappings.partitions
    assert AssetKey("static") not in mappings.partitions, "only time-window partitions follow a logical date"


def test_from_definitions_carries_airflow_asset_keys() -> None:
    keys = AirflowAssetKeys(keys={"s3://b/x": AssetKey("x")})
    mappings = AssetMappings.from_definitions(Definitions(), keys)
    assert mappings.airflow_asset_keys.key_for("s3://b/x") == AssetKey("x")
    assert AssetMappings.from_definitions(Definitions()).airflow_asset_keys.key_for("s3://b/x") == AssetKey(
        ["s3", "b", "x"]
    )


def test_mapped_tasks_of_a_dag() -> None:
    mappings = AssetMappings(by_task={("etl", "load"): [AssetKey("a")], ("other", "t"): [AssetKey("b")]})
    assert mappings.mapped_tasks("etl") == {"load": [AssetKey("a")]}
    assert mappings.mapped_tasks("missing") == {}


# --- build_defs_from_airflow_instance ----------------------------------------------------------


def build_example_defs() -> Definitions:
    return build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="prod", event_source=unreachable_source()),
        defs=Definitions(
            assets=[
                *assets_with_task_mappings(
                    dag_id="etl", task_mappings={"load": [warehouse_table], "extract": [AssetSpec("raw")]}
                ),
                *assets_with_dag_mappings({"reports": [AssetSpec("report")]}),
            ]
        ),
    )


def test_built_defs_contain_mapped_assets_and_dag_assets() -> None:
    defs = build_example_defs()
    keys = set(defs.resolve_all_asset_keys())
    assert keys == {
        AssetKey("warehouse_table"),
        AssetKey("raw"),
        AssetKey("report"),
        AssetKey(["prod", "dag", "etl"]),
        AssetKey(["prod", "dag", "reports"]),
        AssetKey(["prod", "airstream_health"]),  # the consumer's health record
    }
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
    dag_spec = specs[AssetKey(["prod", "dag", "etl"])]
    assert "airflow" in dag_spec.kinds
    assert entries(specs[AssetKey("warehouse_table")].metadata[TASK_MAPPING_METADATA_KEY]) == [
        {"dag_id": "etl", "task_id": "load"}
    ]


def test_built_defs_have_a_running_sensor_named_after_the_instance() -> None:
    defs = build_example_defs()
    sensor_def = defs.resolve_sensor_def("prod__airflow_event_sensor")
    assert sensor_def.name == "prod__airflow_event_sensor"
    assert sensor_def.default_status == DefaultSensorStatus.RUNNING
    assert sensor_def.minimum_interval_seconds == 1
    assert "kafka://127.0.0.1:1/t" in (sensor_def.description or "")


def test_built_defs_validate_loadable() -> None:
    Definitions.validate_loadable(build_example_defs())


def test_built_defs_without_input_defs() -> None:
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="prod", event_source=unreachable_source())
    )
    assert list(defs.resolve_all_asset_keys()) == [AssetKey(["prod", "airstream_health"])]
    assert defs.resolve_sensor_def("prod__airflow_event_sensor").name == "prod__airflow_event_sensor"
    Definitions.validate_loadable(defs)


def test_built_defs_honour_sensor_options() -> None:
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="staging", event_source=unreachable_source()),
        defs=Definitions(assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("a")]})),
        sensor_minimum_interval_seconds=30,
        default_sensor_status=DefaultSensorStatus.STOPPED,
    )
    sensor_def = defs.resolve_sensor_def("staging__airflow_event_sensor")
    assert sensor_def.default_status == DefaultSensorStatus.STOPPED
    assert sensor_def.minimum_interval_seconds == 30
    assert AssetKey(["staging", "dag", "etl"]) in set(defs.resolve_all_asset_keys())


def test_built_defs_take_airflow_asset_keys_and_key_fn() -> None:
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="prod", event_source=unreachable_source()),
        airflow_asset_keys={"s3://warehouse/orders.parquet": ["warehouse", "orders"]},
        airflow_asset_key_fn=lambda uri: AssetKey(["lake", "events"]) if uri.startswith("s3://lake/") else None,
    )
    Definitions.validate_loadable(defs)
    assert defs.resolve_sensor_def("prod__airflow_event_sensor")


def test_built_defs_refuse_bad_airflow_asset_keys_when_defined() -> None:
    with pytest.raises(TypeError, match=r"airflow_asset_keys\['s3://x'\].*not an asset key"):
        build_defs_from_airflow_instance(
            airflow_instance=AirflowInstance(name="prod", event_source=unreachable_source()),
            airflow_asset_keys={"s3://x": 3},  # type: ignore[dict-item]
        )


def test_two_instances_merge_into_one_loadable_definitions() -> None:
    mapped = Definitions(assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("a")]}))
    prod = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="prod", event_source=unreachable_source()), defs=mapped
    )
    staging = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="staging", event_source=unreachable_source())
    )
    merged = Definitions.merge(prod, staging)
    Definitions.validate_loadable(merged)
    assert merged.resolve_sensor_def("prod__airflow_event_sensor")
    assert merged.resolve_sensor_def("staging__airflow_event_sensor")


def test_built_dag_assets_are_downstream_of_their_mapped_assets() -> None:
    specs = {spec.key: spec for spec in build_example_defs().resolve_all_asset_specs()}
    etl = specs[AssetKey(["prod", "dag", "etl"])]
    assert {dep.asset_key for dep in etl.deps} == {AssetKey("warehouse_table"), AssetKey("raw")}
    reports = specs[AssetKey(["prod", "dag", "reports"])]
    assert {dep.asset_key for dep in reports.deps} == {AssetKey("report")}


def test_built_defs_put_the_instance_in_one_group_and_keep_groups_users_chose() -> None:
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="prod", event_source=unreachable_source()),
        defs=Definitions(
            assets=[
                *assets_with_task_mappings(
                    dag_id="etl", task_mappings={"load": [AssetSpec("mine", group_name="finance"), AssetSpec("plain")]}
                ),
                AssetSpec("unmapped"),
            ]
        ),
    )
    groups = {spec.key: spec.group_name for spec in defs.resolve_all_asset_specs()}
    assert groups == {
        AssetKey("mine"): "finance",
        AssetKey("plain"): "prod",
        AssetKey("unmapped"): "default",
        AssetKey(["prod", "dag", "etl"]): "prod",
        AssetKey(["prod", "airstream_health"]): "prod",
    }


def test_built_defs_declare_the_state_checks() -> None:
    check_keys = build_example_defs().resolve_asset_graph().asset_check_keys
    assert {(key.asset_key, key.name) for key in check_keys} == {
        (AssetKey("warehouse_table"), "airflow_task_succeeded"),
        (AssetKey("raw"), "airflow_task_succeeded"),
        (AssetKey("report"), "airflow_run_succeeded"),
        (AssetKey(["prod", "dag", "etl"]), "airflow_run_succeeded"),
        (AssetKey(["prod", "dag", "reports"]), "airflow_run_succeeded"),
    }


def test_built_defs_without_state_checks_declare_none() -> None:
    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name="prod", event_source=unreachable_source()),
        defs=Definitions(assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("a")]})),
        airflow_state_checks=False,
    )
    assert not defs.resolve_asset_graph().asset_check_keys


def test_built_defs_refuse_an_unknown_dag_asset_history() -> None:
    with pytest.raises(ValueError, match="dag_asset_history must be one of 'runs', 'all'"):
        build_defs_from_airflow_instance(
            airflow_instance=AirflowInstance(name="prod", event_source=unreachable_source()),
            dag_asset_history="every",  # type: ignore[arg-type]
        )


# --- AirflowInstance and KafkaEventSource validation -------------------------------------------


@pytest.mark.parametrize("name", ["prod-eu", "prod/eu", "", "prod eu", "prod\n", "p" * 65, None, 3])
def test_airflow_instance_rejects_bad_names(name: Any) -> None:
    with pytest.raises(InvalidInstanceName, match="letters, digits and underscores") as caught:
        AirflowInstance(name=name, event_source=unreachable_source())
    assert isinstance(caught.value, ValueError)
    # The listener's message, word for word: one rule on both sides.
    with pytest.raises(InvalidInstanceName) as listener_side:
        validate_instance_name(name)
    assert str(caught.value) == str(listener_side.value)


def test_airflow_instance_accepts_the_longest_name() -> None:
    assert AirflowInstance(name="p" * 64, event_source=unreachable_source()).name == "p" * 64


def test_airflow_instance_accepts_letters_digits_underscores() -> None:
    assert AirflowInstance(name="Prod_2", event_source=unreachable_source()).name == "Prod_2"


@pytest.mark.parametrize("event_source", ["127.0.0.1:9092", object()])
def test_airflow_instance_rejects_non_event_source(event_source: Any) -> None:
    with pytest.raises(TypeError, match="event_source must be an EventSource"):
        AirflowInstance(name="prod", event_source=event_source)


def test_airflow_instance_needs_an_event_source_or_an_auth_backend() -> None:
    with pytest.raises(ValueError, match=r"needs event_source .* auth_backend"):
        AirflowInstance(name="prod")


@pytest.mark.parametrize(
    ("given", "expected"),
    [("http://af:8080/", "http://af:8080"), ("http://af:8080//", "http://af:8080"), ("http://af", "http://af")],
)
def test_airflow_instance_strips_trailing_slash_of_webserver_url(given: str, expected: str) -> None:
    assert (
        AirflowInstance(name="prod", event_source=unreachable_source(), webserver_url=given).webserver_url == expected
    )


def test_airflow_instance_webserver_url_defaults_to_none() -> None:
    assert AirflowInstance(name="prod", event_source=unreachable_source()).webserver_url is None


@pytest.mark.parametrize("servers", ["", "   "])
def test_kafka_source_rejects_empty_bootstrap_servers(servers: str) -> None:
    with pytest.raises(ValueError, match="bootstrap_servers is empty"):
        KafkaEventSource(bootstrap_servers=servers, topic="t")


def test_kafka_source_rejects_empty_topic() -> None:
    with pytest.raises(ValueError, match="topic is empty"):
        KafkaEventSource(bootstrap_servers="h:9092", topic="")


@pytest.mark.parametrize(
    "limits", [{"max_events_per_tick": 0}, {"max_events_per_tick": -1}, {"max_seconds_per_tick": 0}]
)
def test_kafka_source_rejects_non_positive_limits(limits: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        KafkaEventSource(bootstrap_servers="h:9092", topic="t", **limits)


def test_kafka_source_splits_servers_and_describes_itself() -> None:
    source = KafkaEventSource(bootstrap_servers=" a:1 , b:2,", topic="airflow.events")
    assert source.bootstrap_servers == ["a:1", "b:2"]
    assert source.describe() == "kafka://a:1,b:2/airflow.events"


def test_peered_dags_feeding_each_other_through_an_airflow_asset_are_linked_in_one_group() -> None:
    mapped = Definitions(assets=assets_with_task_mappings(dag_id="etl", task_mappings={"load": [warehouse_table]}))
    snapshot = fetch_peering_snapshot(FakeAirflowApi(), instance_name="prod", task_dag_ids=["etl"])
    defs = build_observation_defs(
        airflow_instance=AirflowInstance(name="prod", event_source=unreachable_source()), defs=mapped, snapshot=snapshot
    )
    specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}

    def upstream(key: AssetKey) -> set[AssetKey]:
        return {dep.asset_key for dep in specs[key].deps}

    orders = AssetKey(["s3", "warehouse", "orders_parquet"])
    # load's asset → the Airflow asset load produces → the DAG it triggers; etl's DAG asset after load's asset
    assert upstream(orders) == {AssetKey("warehouse_table")}
    assert upstream(AssetKey(["prod", "dag", "reports"])) == {orders}
    assert upstream(AssetKey(["prod", "dag", "etl"])) == {AssetKey("warehouse_table")}
    # every spec airstream adds is in the instance's group; an @asset keeps its own ("default")
    assert {spec.group_name for key, spec in specs.items() if key != AssetKey("warehouse_table")} == {"prod"}
    Definitions.validate_loadable(defs)
