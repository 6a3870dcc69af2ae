"""The Dagster storage calls outside Dagster's public API that airstream relies on.

If one of these fails after a Dagster upgrade, adapt ``dagster_consumer/dagster_kvs.py`` (the only
module that makes them) before anything else: the sensor's deduplication depends on them.
"""

from __future__ import annotations

import pytest
from dagster import AssetKey, AssetMaterialization, AssetObservation, DagsterInstance

from airstream.dagster_consumer.dagster_kvs import (
    DagsterStorageChanged,
    asset_events_stored_after,
    latest_storage_id,
    read_values,
    write_values,
)


@pytest.fixture
def instance(storage_instance: DagsterInstance) -> DagsterInstance:
    """SQLite, then PostgreSQL (their key-value stores differ: an upsert on PostgreSQL only)."""
    return storage_instance


def test_values_are_written_read_and_overwritten(instance: DagsterInstance) -> None:
    assert read_values(instance, ["airstream/test/a"]) == {}
    write_values(instance, {"airstream/test/a": "1", "airstream/test/b": "x" * 200_000})
    assert read_values(instance, ["airstream/test/a", "airstream/test/b", "airstream/test/none"]) == {
        "airstream/test/a": "1",
        "airstream/test/b": "x" * 200_000,
    }, "a large value (a segment of ids) round-trips whole"
    write_values(instance, {"airstream/test/a": "2", "airstream/test/c": "3"})  # one existing, one new key
    assert read_values(instance, ["airstream/test/a", "airstream/test/c"]) == {
        "airstream/test/a": "2",
        "airstream/test/c": "3",
    }


def test_the_latest_storage_id_grows_with_each_stored_asset_event(instance: DagsterInstance) -> None:
    assert latest_storage_id(instance) == 0
    instance.report_runless_asset_event(AssetMaterialization(asset_key="a"))
    first = latest_storage_id(instance)
    instance.report_runless_asset_event(AssetObservation(asset_key="b"))
    assert latest_storage_id(instance) > first > 0


def test_asset_events_stored_after_a_storage_id_are_listed_in_order(instance: DagsterInstance) -> None:
    instance.report_runless_asset_event(AssetMaterialization(asset_key="before", metadata={"n": 0}))
    mark = latest_storage_id(instance)
    instance.report_runless_asset_event(AssetMaterialization(asset_key="a", metadata={"n": 1}))
    instance.report_runless_asset_event(AssetObservation(asset_key="b", metadata={"n": 2}))
    found = [(key, metadata["n"].value) for key, metadata in asset_events_stored_after(instance, mark, page=1)]
    assert found == [(AssetKey("a"), 1), (AssetKey("b"), 2)]


def test_a_storage_without_the_calls_is_named(instance: DagsterInstance) -> None:
    class Stripped:
        daemon_cursor_storage = None
        event_log_storage = None

    with pytest.raises(DagsterStorageChanged, match=r"dagster_kvs\.py"):
        read_values(Stripped(), ["k"])
    with pytest.raises(DagsterStorageChanged, match="get_maximum_record_id"):
        latest_storage_id(Stripped())
