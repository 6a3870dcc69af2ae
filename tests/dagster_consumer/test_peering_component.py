"""The YAML component, loaded from a defs folder with Dagster's own component test sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dagster import AssetKey, DagsterInstance, instance_for_test
from dagster.components.testing import create_defs_folder_sandbox

from airstream.dagster_consumer.peering.component import AirflowAuth, AirflowInstanceComponent
from airstream.dagster_consumer.peering.loader import loaded_peerings, refresh_airflow_peering
from devstack.fake_peering_api import SHARED_FAKE_API, FakeApiAirflowInstanceComponent

DEFS_YAML = {
    "type": "devstack.fake_peering_api.FakeApiAirflowInstanceComponent",
    "attributes": {
        "name": "prod",
        "webserver_url": "http://af:8080",
        "auth": {"type": "token", "username": "admin", "password_env": "TEST_AIRSTREAM_AIRFLOW_PASSWORD"},
        "filter": {"dag_id_pattern": "*", "tags": ["warehouse", "bi"]},
        "task_mappings": [{"dag_id": "etl", "task_id": "load", "assets": [{"key": "warehouse/orders_table"}]}],
        "dag_mappings": [{"dag_id": "reports", "assets": [{"key": "reports/pdf"}]}],
        "airflow_asset_keys": {"s3://warehouse/orders.parquet": "warehouse/orders"},
    },
}


@pytest.fixture
def dagster_instance(monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    monkeypatch.setenv("TEST_AIRSTREAM_AIRFLOW_PASSWORD", "s3cret")
    SHARED_FAKE_API.calls.clear()
    with instance_for_test() as instance:
        yield instance


def write_component(defs_folder: Path, document: dict) -> Path:
    path = defs_folder / "prod_airflow"
    path.mkdir(parents=True, exist_ok=True)
    (path / "defs.yaml").write_text(yaml.safe_dump(document))
    return path


def test_yaml_component_peers_and_caches(dagster_instance: DagsterInstance) -> None:
    with create_defs_folder_sandbox() as sandbox:
        path = write_component(sandbox.defs_folder_path, DEFS_YAML)
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, FakeApiAirflowInstanceComponent)
            specs = {spec.key: spec for spec in defs.resolve_all_asset_specs()}
            calls = SHARED_FAKE_API.total

        # DAGs kept by the tag filter, and the mapped ones
        dag_keys = {key for key in specs if key.path[:2] == ["prod", "dag"]}
        assert dag_keys == {AssetKey(["prod", "dag", "etl"]), AssetKey(["prod", "dag", "reports"])}
        # mappings from YAML, the Airflow asset under the key named in YAML, with its lineage
        assert AssetKey(["warehouse", "orders_table"]) in specs and AssetKey(["reports", "pdf"]) in specs
        orders = specs[AssetKey(["warehouse", "orders"])]
        assert {dep.asset_key for dep in orders.deps} == {AssetKey(["warehouse", "orders_table"])}
        # the reports DAG consumes the Airflow asset and is downstream of its own mapped asset
        assert {dep.asset_key for dep in specs[AssetKey(["prod", "dag", "reports"])].deps} == {
            orders.key,
            AssetKey(["reports", "pdf"]),
        }
        assert defs.resolve_sensor_def("prod__airflow_event_sensor") is not None
        assert defs.resolve_job_def("prod__airflow_peering_refresh") is not None

        # Loading the code location again: no call to Airflow.
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, again):
            assert {spec.key for spec in again.resolve_all_asset_specs()} == set(specs)
        assert SHARED_FAKE_API.total == calls

        # A refresh calls Airflow once more.
        refresh_airflow_peering(loaded_peerings()["airstream_peering__prod"], instance=dagster_instance)
        assert SHARED_FAKE_API.total == 2 * calls


def test_yaml_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    component = AirflowInstanceComponent(
        name="prod",
        webserver_url="http://af:8080",
        auth=AirflowAuth(type="token", username="admin", password_env="TEST_AIRSTREAM_AIRFLOW_PASSWORD"),
    )
    with pytest.raises(ValueError, match="TEST_AIRSTREAM_AIRFLOW_PASSWORD"):
        component.build_auth_backend()
    monkeypatch.setenv("TEST_AIRSTREAM_AIRFLOW_PASSWORD", "s3cret")
    instance = component.build_airflow_instance()
    assert instance.event_source is None  # no kafka: the sensor polls REST
    assert instance.rest is not None and "s3cret" not in repr(instance.rest) + repr(instance.auth_backend)


def test_yaml_history_and_state_check_options_reach_the_definitions(dagster_instance: DagsterInstance) -> None:
    document = {"type": DEFS_YAML["type"], "attributes": {**DEFS_YAML["attributes"]}}
    with create_defs_folder_sandbox() as sandbox:
        path = write_component(sandbox.defs_folder_path, document)
        with sandbox.load_component_and_build_defs(defs_path=path) as (_, defaults):
            assert list(defaults.resolve_asset_graph().asset_check_keys), "state checks are on by default"

        document["attributes"] |= {"dag_asset_history": "all", "airflow_state_checks": False}
        path = write_component(sandbox.defs_folder_path, document)
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert component.peering_settings().dag_asset_history == "all"
            assert not list(defs.resolve_asset_graph().asset_check_keys)
