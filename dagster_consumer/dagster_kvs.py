"""Everything airstream's consumer needs from Dagster beyond its public API, in one place.

The sensor keeps the ids of the events it recorded outside its cursor (so the cursor Dagster
stores with every tick stays small): in the instance's key-value store, the table Dagster's own
daemons keep their cursors in (``kvs``, reached through the run storage's ``get_cursor_values``
and ``set_cursor_values``). And to know which asset events a tick that died may already have
stored, it reads the event log's highest storage id. Neither is part of Dagster's public API
(``@public``) in 1.13, so a Dagster upgrade that changes them breaks here, and
``tests/dagster_consumer/test_dagster_kvs.py`` says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any


class DagsterStorageChanged(RuntimeError):
    """This Dagster version lacks a storage call airstream relies on."""


def read_values(instance: Any, keys: Iterable[str]) -> dict[str, str]:
    """The stored values of ``keys`` that exist (``{}`` for none)."""
    wanted = set(keys)
    if not wanted:
        return {}
    return dict(_cursor_storage(instance).get_cursor_values(wanted))


def write_values(instance: Any, pairs: Mapping[str, str]) -> None:
    """Store ``pairs``, inserting new keys and overwriting existing ones.

    One call per key: Dagster 1.13's ``set_cursor_values`` inserts all the pairs, and when one key
    exists already it updates the existing ones only, dropping the new keys of the same call."""
    if not pairs:
        return
    storage = _cursor_storage(instance)
    for key, value in pairs.items():
        storage.set_cursor_values({key: value})


def latest_storage_id(instance: Any) -> int:
    """The highest storage id in the instance's event log (0 when it is empty): every asset event
    stored later has a higher one."""
    storage = getattr(instance, "event_log_storage", None)
    get_maximum = getattr(storage, "get_maximum_record_id", None)
    if get_maximum is None:
        raise DagsterStorageChanged(
            "this Dagster version's event log storage has no get_maximum_record_id(); airstream's "
            "dagster_consumer/dagster_kvs.py must be adapted to it (or pin the Dagster version airstream supports)"
        )
    return int(get_maximum() or 0)


def _cursor_storage(instance: Any) -> Any:
    storage = getattr(instance, "daemon_cursor_storage", None)
    if storage is None or not hasattr(storage, "get_cursor_values") or not hasattr(storage, "set_cursor_values"):
        raise DagsterStorageChanged(
            "this Dagster version's instance has no daemon_cursor_storage with get_cursor_values/set_cursor_values; "
            "airstream's dagster_consumer/dagster_kvs.py must be adapted to it (or pin the Dagster version airstream "
            "supports)"
        )
    return storage


def asset_events_stored_after(instance: Any, storage_id: int, page: int = 1000) -> Iterator[tuple[Any, Any]]:
    """``(asset_key, metadata)`` of every runless materialization and observation (what a sensor's
    ``SensorResult`` and ``report_runless_asset_event`` store) with a storage id above ``storage_id``,
    oldest first."""
    from dagster import DagsterEventType

    try:
        from dagster._core.storage.event_log.base import EventLogCursor
    except ImportError as error:
        raise DagsterStorageChanged(
            f"this Dagster version has no EventLogCursor ({error}); airstream's dagster_consumer/dagster_kvs.py "
            "must be adapted to it"
        ) from error
    kinds = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.ASSET_OBSERVATION}
    after = storage_id
    while True:
        connection = instance.get_records_for_run(
            "", cursor=EventLogCursor.from_storage_id(after).to_string(), of_type=kinds, limit=page
        )
        for record in connection.records:
            after = max(after, record.storage_id)
            entry = record.event_log_entry
            event = entry.asset_materialization or entry.asset_observation
            if event is not None:
                yield event.asset_key, event.metadata
        if len(connection.records) < page:
            return
