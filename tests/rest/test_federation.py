"""Federation: one Dagster deployment over Airflow 3.3 and Airflow 2.11, whose listeners publish to
one topic. Each instance's sensor records its own instance's runs and nothing else, the merged
definitions keep the instances apart by name, and Dagster runs a DAG in the other instance."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, instance_for_test, materialize

from airstream.dagster_consumer import (
    AirflowFilter,
    AirflowInstance,
    KafkaEventSource,
    build_defs_from_airflow_instance,
    build_trigger_dag_asset,
)
from devstack.dagster import recorded_asset_events, tick_and_store
from devstack.facts import Fact, facts_from_api, facts_from_metadata
from devstack.rest_stack import RestAirflow

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

DAG_ID = "observe_branching"


@pytest.fixture
def dagster_instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


def _observed(af: RestAirflow, *, airflow_assets: bool) -> Definitions:
    """One instance's definitions: its events from the shared topic, its DAGs peered over REST.

    Both instances list the same Airflow asset (their DAG files are the same); only one of them
    may define its spec, or ``Definitions.merge`` refuses the duplicate key.
    """
    return build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(
            name=af.name,
            event_source=KafkaEventSource(bootstrap_servers=af.bootstrap_servers, topic=af.topic),
            auth_backend=af.auth_backend(),
        ),
        airflow_filter=AirflowFilter(dag_id_pattern="observe_*", retrieve_airflow_assets=airflow_assets),
        dag_asset_history="all",  # every task outcome on the DAG asset, to compare with REST's
    )


def _records_of(instance: DagsterInstance, af: RestAirflow) -> list[Fact]:
    prefix = f"{af.name}/dag/"
    return facts_from_metadata(
        event.metadata for event in recorded_asset_events(instance) if event.asset_key.startswith(prefix)
    )


def test_two_instances_on_one_topic_stay_apart(
    airflow3_rest: RestAirflow, airflow2_rest: RestAirflow, dagster_instance: DagsterInstance
) -> None:
    assert airflow3_rest.topic == airflow2_rest.topic, "the fixtures share one topic"
    assert airflow3_rest.name != airflow2_rest.name
    instances = (airflow3_rest, airflow2_rest)
    runs = {af.name: af.admin_api().trigger(DAG_ID) for af in instances}
    for af in instances:
        assert af.admin_api().wait_for_run(DAG_ID, runs[af.name], timeout=300) == "success"
    expected = {af.name: Counter(facts_from_api(af.admin_api(), DAG_ID, runs[af.name])) for af in instances}

    defs = Definitions.merge(
        _observed(airflow3_rest, airflow_assets=True), _observed(airflow2_rest, airflow_assets=False)
    )
    keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    for af in instances:
        assert AssetKey([af.name, "dag", DAG_ID]) in keys

    sensors = {af.name: defs.resolve_sensor_def(f"{af.name}__airflow_event_sensor") for af in instances}
    cursors: dict[str, str | None] = dict.fromkeys(sensors)
    deadline = time.monotonic() + 120
    recorded: dict[str, Counter[Fact]] = {}
    while time.monotonic() < deadline:
        for name, sensor in sensors.items():
            cursors[name], _ = tick_and_store(sensor, dagster_instance, cursors[name], definitions=defs)
        recorded = {
            af.name: Counter(f for f in _records_of(dagster_instance, af) if f[1] == runs[af.name]) for af in instances
        }
        if all(not expected[name] - recorded[name] for name in expected):
            break
        time.sleep(1)

    for af in instances:
        assert recorded[af.name] == expected[af.name], f"{af.name}: missing {expected[af.name] - recorded[af.name]}"
        # Nothing of the other instance's run on this instance's DAG asset, whatever else the topic holds.
        others = {runs[name] for name in runs if name != af.name}
        assert not [f for f in _records_of(dagster_instance, af) if f[1] in others]
        events = [e for e in recorded_asset_events(dagster_instance) if e.asset_key.startswith(f"{af.name}/dag/")]
        assert {e.metadata["airflow/instance"] for e in events} == {af.name}


def test_dagster_runs_a_dag_in_another_instance_and_waits_for_it(
    airflow2_rest: RestAirflow, dagster_instance: DagsterInstance
) -> None:
    other = AirflowInstance(name=airflow2_rest.name, auth_backend=airflow2_rest.auth_backend())
    asset = build_trigger_dag_asset(other, "observe_asset_producer", timeout=300, poll_interval=2)
    result = materialize([asset], instance=dagster_instance)
    assert result.success
    (materialization,) = result.asset_materializations_for_node(asset.op.name)
    run_id = materialization.metadata["airflow/run_id"].value
    assert airflow2_rest.admin_api().dag_run("observe_asset_producer", str(run_id))["state"] == "success"
