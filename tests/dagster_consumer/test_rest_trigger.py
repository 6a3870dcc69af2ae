"""AirflowInstance's REST methods and the ready-made trigger asset and op, against a fake Airflow over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from dagster import AssetKey, AssetSpec, DagsterInstance, DailyPartitionsDefinition, Definitions, job, materialize

from airstream.dagster_consumer import AirflowInstance
from airstream.dagster_consumer.rest import AirflowRunTimeout, BasicAuthBackend, TokenAuthBackend
from airstream.dagster_consumer.trigger_dag import build_trigger_dag_asset, build_trigger_dag_op
from devstack.fake_airflow_http import PASSWORD, USERNAME, FakeAirflowHttp


@pytest.fixture
def airflow3() -> Iterator[FakeAirflowHttp]:
    with FakeAirflowHttp("v2") as fake:
        yield fake


def rest_only(fake: FakeAirflowHttp, name: str = "finance") -> AirflowInstance:
    return AirflowInstance(name=name, auth_backend=TokenAuthBackend(fake.url, USERNAME, PASSWORD))


def test_a_rest_only_instance_has_one_cached_client(airflow3: FakeAirflowHttp) -> None:
    instance = rest_only(airflow3)
    assert instance.event_source is None
    assert instance.webserver_url == airflow3.url
    assert instance.rest is not None
    assert instance.rest is instance.rest
    assert hash(instance) == hash(instance)
    assert {instance: 1}[instance] == 1


def test_without_auth_backend_there_is_no_rest_client() -> None:
    from airstream.dagster_consumer.sources.base import EventBatch, EventSource, Position

    class Nothing(EventSource):
        def read(self, position: Position | None) -> EventBatch:
            return EventBatch(events=[], position={})

        def describe(self) -> str:
            return "nothing"

    instance = AirflowInstance(name="prod", event_source=Nothing())
    assert instance.rest is None
    with pytest.raises(ValueError, match="has no REST access: give it auth_backend"):
        instance.trigger_dag("etl")


def test_airlift_style_trigger_state_and_wait(airflow3: FakeAirflowHttp) -> None:
    instance = rest_only(airflow3)
    run_id = instance.trigger_dag("dag_000", conf={"k": "v"}, logical_date=datetime(2026, 2, 1, tzinfo=timezone.utc))
    assert instance.get_run_state("dag_000", run_id) == "queued"
    airflow3.run_states[run_id] = ["running", "success"]
    assert instance.wait_for_run_completion("dag_000", run_id, timeout=5, poll_interval=0.01) == "success"
    airflow3.run_states[run_id] = ["running"]
    with pytest.raises(AirflowRunTimeout, match=f"dag_000/{run_id} did not finish within 0.2 s"):
        instance.wait_for_run_completion("dag_000", run_id, timeout=0.2, poll_interval=0.05)


def test_the_trigger_asset_materializes_with_the_run(airflow3: FakeAirflowHttp) -> None:
    asset = build_trigger_dag_asset(rest_only(airflow3), "dag_000", conf={"from": "dagster"}, poll_interval=0.01)
    airflow3.run_states["manual__0"] = ["running", "success"]
    with DagsterInstance.ephemeral() as instance:
        result = materialize([asset], instance=instance)
        assert result.success
        event = instance.get_latest_materialization_event(AssetKey(["finance", "dag_run", "dag_000"]))
        assert event is not None and event.asset_materialization is not None
        metadata = event.asset_materialization.metadata
        assert metadata["airflow/run_id"].value == "manual__0"
        assert metadata["airflow/state"].value == "success"
        assert metadata["airflow/url"].value == f"{airflow3.url}/dags/dag_000/runs/manual__0"
    assert airflow3.bodies("POST", "/api/v2/dags/dag_000/dagRuns") == [
        {"conf": {"from": "dagster"}, "logical_date": None}
    ]


def test_a_failed_run_fails_the_asset(airflow3: FakeAirflowHttp) -> None:
    asset = build_trigger_dag_asset(rest_only(airflow3), "dag_000", spec=AssetSpec("ledger"), poll_interval=0.01)
    airflow3.run_states["manual__0"] = ["failed"]
    result = materialize([asset], raise_on_error=False)
    assert not result.success
    assert "ended failed" in str(result.all_events)


def test_a_daily_partition_is_the_run_logical_date(airflow3: FakeAirflowHttp) -> None:
    spec = AssetSpec("ledger", partitions_def=DailyPartitionsDefinition("2026-01-01"))
    asset = build_trigger_dag_asset(rest_only(airflow3), "dag_000", spec=spec, poll_interval=0.01)
    airflow3.run_states["manual__0"] = ["success"]
    assert materialize([asset], partition_key="2026-03-04").success
    [body] = airflow3.bodies("POST", "/api/v2/dags/dag_000/dagRuns")
    assert body["logical_date"] == "2026-03-04T00:00:00+00:00"


def test_the_trigger_op_runs_a_dag_of_another_airflow_2_instance() -> None:
    with FakeAirflowHttp("v1") as airflow2:
        other = AirflowInstance(name="legacy", auth_backend=BasicAuthBackend(airflow2.url, USERNAME, PASSWORD))
        trigger = build_trigger_dag_op(other, "dag_001", poll_interval=0.01)
        airflow2.run_states["manual__0"] = ["running", "success"]

        @job
        def nightly() -> None:
            trigger()

        result = nightly.execute_in_process()
        assert result.success
        assert result.output_for_node("trigger_legacy__dag_001") == "manual__0"
        assert airflow2.bodies("POST", "/api/v1/dags/dag_001/dagRuns") == [{"conf": {}}]


def test_the_asset_and_the_op_of_one_dag_live_in_one_definitions(airflow3: FakeAirflowHttp) -> None:
    finance = rest_only(airflow3)
    asset = build_trigger_dag_asset(finance, "dag_000")
    trigger = build_trigger_dag_op(finance, "dag_000")

    @job
    def nightly() -> None:
        trigger()

    Definitions.validate_loadable(Definitions(assets=[asset], jobs=[nightly]))
    assert asset.op.name == "finance__dag_run__dag_000"
    assert trigger.name == "trigger_finance__dag_000"
