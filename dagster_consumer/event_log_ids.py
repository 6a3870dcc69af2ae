"""Asking Dagster's event log which asset events an Airflow event already produced.

Every asset event airstream records carries the Airflow event's id as metadata
(``airstream/event_id``). Two questions are answered from that, where the sensor's own record of
ids (:mod:`airstream.dagster_consumer.recorded_ids`) cannot:

* an event older than the deduplication horizon (a spool flushed after weeks, a replay of old
  history): :class:`EventLogIds` reads the asset events of the keys the event maps to;
* the events a tick that died may have stored before its cursor was (Dagster's daemon stores a
  tick's asset events, then its cursor): :func:`stored_since` reads what was stored after the
  highest storage id that tick saw.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dagster import AssetKey, AssetRecordsFilter

from airstream.dagster_consumer.dagster_kvs import asset_events_stored_after
from airstream.dagster_consumer.translate import EVENT_ID_METADATA_KEY

_PAGE = 1000


def _event_id_of(metadata: Any) -> str | None:
    value = metadata.get(EVENT_ID_METADATA_KEY) if metadata else None
    value = getattr(value, "value", value)
    return value if isinstance(value, str) else None


def stored_since(instance: Any, storage_id: int) -> dict[str, set[AssetKey]]:
    """Event id → the asset keys holding an asset event of it, for every airstream asset event
    stored after ``storage_id``."""
    found: dict[str, set[AssetKey]] = {}
    for asset_key, metadata in asset_events_stored_after(instance, storage_id):
        event_id = _event_id_of(metadata)
        if event_id is not None:
            found.setdefault(event_id, set()).add(asset_key)
    return found


class EventLogIds:
    """The event ids recorded on asset keys, read from the event log key by key and kept.

    Each key is read once in full, then only what was stored since, at most once per
    :meth:`new_batch` (call it after storing a batch, so the next read sees it).

    Example::

        lookup = EventLogIds(instance)
        lookup.keys_holding(event.event_id, [AssetKey(["prod", "dag", "etl"])])   # {} or {that key}
    """

    def __init__(self, instance: Any) -> None:
        self.instance = instance
        self._ids: dict[AssetKey, set[str]] = {}
        self._read_up_to: dict[AssetKey, int] = {}
        self._fresh: set[AssetKey] = set()
        self.reads = 0

    def new_batch(self) -> None:
        """What was stored since the last read may now be in the event log: read it when asked."""
        self._fresh.clear()

    def keys_holding(self, event_id: str, keys: Iterable[AssetKey]) -> set[AssetKey]:
        """Those of ``keys`` that hold an asset event recorded from ``event_id``."""
        holding = set()
        for key in keys:
            if key not in self._fresh:
                self._read(key)
            if event_id in self._ids.get(key, ()):
                holding.add(key)
        return holding

    def _read(self, key: AssetKey) -> None:
        after = self._read_up_to.get(key, 0)
        ids = self._ids.setdefault(key, set())
        highest = after
        for fetch in (self.instance.fetch_materializations, self.instance.fetch_observations):
            cursor = None
            while True:
                self.reads += 1
                result = fetch(
                    AssetRecordsFilter(asset_key=key, after_storage_id=after or None),
                    limit=_PAGE,
                    cursor=cursor,
                    ascending=True,
                )
                for record in result.records:
                    highest = max(highest, record.storage_id)
                    entry = record.event_log_entry
                    event = entry.asset_materialization or entry.asset_observation
                    event_id = _event_id_of(event.metadata if event is not None else None)
                    if event_id is not None:
                        ids.add(event_id)
                if not result.has_more:
                    break
                cursor = result.cursor
        self._read_up_to[key] = highest
        self._fresh.add(key)
