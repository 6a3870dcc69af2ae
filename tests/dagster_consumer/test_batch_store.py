"""``store_asset_events`` stores what ``report_runless_asset_event`` stores, event by event.

The same mixed asset events (materializations with metadata, tags and partitions, observations,
passing and failing check evaluations, on several asset keys, in two calls so the second updates
existing records) go once through the batch store and once through Dagster's public per-event
call, into two fresh instances of the same storage (SQLite, then a real PostgreSQL server); then
everything Dagster answers about them through its API must be equal, storage ids included, except
the time each event was stored. The batch store uses Dagster's private storage code: these tests
are what fails when a Dagster upgrade changes it (or makes the batch store fall back to
per-event writes).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterEventType,
    DagsterInstance,
    MetadataValue,
)

from airstream.dagster_consumer.batch_store import batches_on, store_asset_events
from devstack.postgres import PostgresServer, dagster_instance_on_new_database

pytestmark = pytest.mark.integration

RUNLESS_RUN_ID = ""  # the run id Dagster gives runless events (dagster._core.instance.utils)
ETL = AssetKey(["prod", "dag", "etl"])
ORDERS = AssetKey(["prod", "table", "orders"])
EVENTS = AssetKey(["prod", "table", "events"])
LATE = AssetKey(["prod", "table", "late"])  # materialized, then observed last
KEYS = (ETL, ORDERS, EVENTS, LATE)
CHECKS = (AssetCheckKey(ETL, "airflow_task_succeeded"), AssetCheckKey(ORDERS, "airflow_task_succeeded"))


def _mixed_events(offset: int) -> list[Any]:
    """Every kind of asset event the consumer stores, over four keys, interleaved."""
    day = f"2026-11-{offset + 1:02d}"
    return [
        AssetMaterialization(
            ETL,
            description="a DAG run",
            metadata={
                "airstream/event_id": f"run-{offset}",
                "airflow/timestamp": MetadataValue.timestamp(1_790_000_000.5 + offset),
                "tries": 2 + offset,
                "duration": 1.25,
                "url": MetadataValue.url("http://airflow.example/dags/etl"),
                "payload": MetadataValue.json({"state": "success", "offset": offset}),
            },
            tags={"dagster/data_version": f"v{offset}"},
        ),
        AssetCheckEvaluation(
            asset_key=ETL,
            check_name="airflow_task_succeeded",
            passed=True,
            metadata={"airflow/timestamp": 1_790_000_000.0 + offset, "airstream/event_id": f"run-{offset}"},
        ),
        AssetMaterialization(
            ORDERS,
            partition=day,
            metadata={"airstream/event_id": f"orders-{offset}", "rows": 10 * offset},
            tags={"dagster/partition/date": day, "dagster/data_version": f"orders-{offset}"},
        ),
        AssetObservation(EVENTS, metadata={"airstream/event_id": f"obs-{offset}"}, tags={"dagster/data_version": "x"}),
        AssetMaterialization(ORDERS, partition="2026-10-31", metadata={"airstream/event_id": f"orders-old-{offset}"}),
        AssetCheckEvaluation(
            asset_key=ORDERS,
            check_name="airflow_task_succeeded",
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description="up for retry",
            metadata={"airflow/timestamp": 1_790_000_100.0 + offset},
        ),
        AssetMaterialization(LATE, metadata={"airstream/event_id": f"late-{offset}"}),
        AssetObservation(EVENTS, partition=day, metadata={"rows": offset}),
        AssetObservation(LATE, metadata={"airstream/event_id": f"late-obs-{offset}"}),
        AssetCheckEvaluation(
            asset_key=ORDERS, check_name="airflow_task_succeeded", passed=True, partition=day, metadata={"n": offset}
        ),
    ]


@pytest.fixture(params=["sqlite", "postgres"])
def two_instances(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    """Two fresh Dagster instances on SQLite (Dagster's default storage), then on PostgreSQL."""
    if request.param == "sqlite":
        homes = [tmp_path / "batch", tmp_path / "per_event"]
        for home in homes:
            home.mkdir()
            (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with DagsterInstance.from_config(str(homes[0])) as one, DagsterInstance.from_config(str(homes[1])) as two:
            yield one, two
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with (
        dagster_instance_on_new_database(server, tmp_path) as one,
        dagster_instance_on_new_database(server, tmp_path) as two,
    ):
        yield one, two


def _entry(entry: Any) -> tuple[Any, ...]:
    """An event log entry without the time it was stored (the only thing allowed to differ)."""
    event = entry.dagster_event
    return (
        entry.run_id,
        entry.job_name,
        entry.level,
        entry.user_message,
        entry.step_key,
        entry.error_info,
        event.event_type_value,
        event.job_name,
        event.step_key,
        event.message,
        event.event_specific_data,
        event.partition,
    )


def _records(records: Sequence[Any]) -> list[tuple[int, tuple[Any, ...]]]:
    return [(record.storage_id, _entry(record.event_log_entry)) for record in records]


def _stored(instance: Any) -> dict[str, Any]:
    """What Dagster answers about the stored events through its API."""
    storage = instance.event_log_storage
    found: dict[str, Any] = {
        "all logs of the runless run": [_entry(entry) for entry in instance.all_logs(RUNLESS_RUN_ID)],
        "asset keys": sorted(key.to_string() for key in instance.get_asset_keys()),
    }
    for key in KEYS:
        name = key.to_user_string()
        found[f"materializations of {name}"] = _records(instance.fetch_materializations(key, limit=1000).records)
        found[f"observations of {name}"] = _records(instance.fetch_observations(key, limit=1000).records)
        latest = instance.get_latest_materialization_event(key)
        found[f"latest materialization of {name}"] = _entry(latest) if latest else None
        found[f"materialized partitions of {name}"] = sorted(instance.get_materialized_partitions(key))
        found[f"indexed tags of {name}"] = sorted(
            sorted(tags.items()) for tags in storage.get_event_tags_for_asset(key)
        )
        found[f"latest storage id by partition of {name}"] = storage.get_latest_storage_id_by_partition(
            key, DagsterEventType.ASSET_MATERIALIZATION
        )
    for record in instance.get_asset_records(list(KEYS)):
        entry = record.asset_entry
        found[f"asset record of {entry.asset_key.to_user_string()}"] = (
            entry.last_materialization_storage_id,
            _entry(entry.last_materialization) if entry.last_materialization else None,
            entry.last_run_id,
            entry.last_observation_storage_id,
            entry.last_planned_materialization_storage_id,
        )
    for check_key in CHECKS:
        name = check_key.to_user_string()
        history = storage.get_asset_check_execution_history(check_key, limit=100)
        found[f"check executions of {name}"] = [
            (execution.id, execution.run_id, execution.status, execution.partition, _entry(execution.event))
            for execution in history
        ]
        latest_check = instance.get_latest_asset_check_evaluation_record(check_key)
        found[f"latest evaluation of {name}"] = (latest_check.id, _entry(latest_check.event)) if latest_check else None
    for check_key, summary in storage.get_asset_check_summary_records(list(CHECKS)).items():
        last = summary.last_check_execution_record
        found[f"check summary of {check_key.to_user_string()}"] = (
            summary.last_run_id,
            (last.id, last.status, _entry(last.event)) if last else None,
        )
    return found


def test_the_batch_store_batches_on_this_dagster(two_instances: tuple[Any, Any]) -> None:
    batch, _ = two_instances
    assert batches_on(batch), (
        f"store_asset_events stores event by event on Dagster {dagster.__version__} with "
        f"{type(batch.event_log_storage).__name__}: check dagster_consumer/batch_store.py against this release's "
        "SqlEventLogStorage.store_event and PostgresEventLogStorage.store_event, then add it to _CHECKED_RELEASES"
    )


def test_batches_store_what_the_per_event_call_stores(two_instances: tuple[Any, Any]) -> None:
    batch, per_event = two_instances
    first, second = _mixed_events(0), _mixed_events(1)
    store_asset_events(batch, first)
    store_asset_events(batch, second)
    for asset_event in [*first, *second]:
        per_event.report_runless_asset_event(asset_event)

    stored, expected = _stored(batch), _stored(per_event)
    assert len(expected["all logs of the runless run"]) == 2 * len(first)
    assert expected["check executions of prod/table/orders:airflow_task_succeeded"], "the comparison saw no check rows"
    assert expected["indexed tags of prod/table/orders"], "the comparison saw no indexed tags"
    for what in expected:
        assert stored[what] == expected[what], f"{what}: the batch store differs from report_runless_asset_event"
    assert stored.keys() == expected.keys()


def test_an_empty_batch_stores_nothing(two_instances: tuple[Any, Any]) -> None:
    batch, _ = two_instances
    store_asset_events(batch, [])
    assert list(batch.all_logs(RUNLESS_RUN_ID)) == []


def test_a_storage_it_does_not_know_gets_the_per_event_call() -> None:
    """An in-memory instance (not a storage the batch store knows) stores the same, event by event."""
    with DagsterInstance.ephemeral() as batch, DagsterInstance.ephemeral() as per_event:
        assert not batches_on(batch)
        events = _mixed_events(0)
        store_asset_events(batch, events)
        for asset_event in events:
            per_event.report_runless_asset_event(asset_event)
        assert _stored(batch) == _stored(per_event)
