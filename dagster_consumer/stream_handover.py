"""How ``airstream stream`` and the sensor hand the topic to each other without recording twice.

* While a stream holds a live lease (:mod:`airstream.dagster_consumer.stream_lease`), the
  sensor's tick records nothing from the topic (:func:`sensor_handover` says so in its log) and
  keeps the streams' positions as its own, so it resumes where they stopped.
* Each side reads the other's recorded ids where they are kept: a stream's in its own
  :class:`~airstream.dagster_consumer.recorded_ids.RecordedIds` namespace, the sensor's under its
  name, with the pointer from its committed cursor. A redelivered event either side recorded is a
  duplicate for both (:class:`LayeredIds`), and an event of a batch the other side stored but did
  not commit (a ``kill -9`` between storing asset events and its state) is found by that side's
  dead-batch resolution (``stored_by_dead_tick``), on the asset keys it reached.
* A stream starting reads the sensor's committed cursor from Dagster's instigator state and waits
  until the sensor's tick in flight, if any, has finished (:func:`wait_for_sensor_tick`).

Reading the other side's ids directly, rather than handing them over through an inbox as
``airstream replay`` does (:mod:`airstream.dagster_consumer.replayed_ids`), lets several split
streams run at once: the key-value store has no compare-and-set, so an inbox with one count key
cannot take several writers.

The instigator state and tick calls are Dagster instance methods whose types live in Dagster's
private modules; they are used here only, by attribute.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from dagster import AssetKey

from airstream.dagster_consumer.consume import EventIds
from airstream.dagster_consumer.cursor import InvalidCursor, SensorCursor
from airstream.dagster_consumer.dagster_kvs import read_values
from airstream.dagster_consumer.recorded_ids import InvalidRecordedIds, RecordedIds
from airstream.dagster_consumer.sources.base import Position
from airstream.dagster_consumer.sources.kafka import TOPIC_ID, partition_offsets
from airstream.dagster_consumer.stream_lease import (
    cursor_key,
    ids_namespace,
    overlaps,
    read_leases,
    registered_splits,
)


class LayeredIds:
    """The ids one driver records into (``own``) and those other drivers recorded (``others``,
    read only): an id in any of them is recorded; new ids go to ``own``."""

    def __init__(self, own: EventIds, others: Sequence[RecordedIds] = ()) -> None:
        self.own = own
        self.others = list(others)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.own or any(event_id in other for other in self.others)

    def add(self, event_id: str, when: datetime | None = None) -> bool:
        if event_id in self:
            return False
        return self.own.add(event_id, when)

    def stored_by_dead_batch(self, event_id: str) -> set[AssetKey]:
        """The asset keys a batch of another driver, stored but never committed, holds ``event_id`` on."""
        held: set[AssetKey] = set()
        for other in self.others:
            held |= other.stored_by_dead_tick(event_id)
        return held


def merged_position(
    base: Position | None, others: Iterable[Position | None], partitions: frozenset[int] | None = None
) -> Position | None:
    """Per partition, the furthest offset of ``base`` and ``others`` (of the same topic id: a
    position of a topic since recreated is ignored), keeping only ``partitions`` (``None``: all)."""
    topic_id = (base or {}).get(TOPIC_ID)
    offsets = partition_offsets(base)
    for other in others:
        if not other:
            continue
        other_id = other.get(TOPIC_ID)
        if isinstance(topic_id, str) and isinstance(other_id, str) and other_id != topic_id:
            continue
        topic_id = topic_id if isinstance(topic_id, str) else other_id
        for partition, offset in partition_offsets(other).items():
            offsets[partition] = max(offset, offsets.get(partition, offset))
    if partitions is not None:
        offsets = {p: o for p, o in offsets.items() if p in partitions}
    if not offsets and not base:
        return base
    position: Position = {str(p): o for p, o in sorted(offsets.items())}
    if isinstance(topic_id, str):
        position[TOPIC_ID] = topic_id
    return position


def stream_states(instance: Any, instance_name: str, splits: Sequence[str] | None = None) -> dict[str, SensorCursor]:
    """The stored state of each split's stream (splits whose state is unreadable are left out)."""
    splits = registered_splits(instance, instance_name) if splits is None else splits
    keys = {cursor_key(instance_name, split): split for split in splits}
    states: dict[str, SensorCursor] = {}
    for key, raw in read_values(instance, keys).items():
        try:
            states[keys[key]] = SensorCursor.parse(raw)
        except InvalidCursor:
            continue
    return states


# (namespace, pointer) → the ids of a driver that is not running: its state no longer changes,
# so its segments and its dead-batch resolution are read once per process.
_PEERS: dict[tuple[str, str], RecordedIds] = {}


def peer_ids(instance: Any, namespace: str, cursor: SensorCursor, *, now: float) -> RecordedIds | None:
    """Another driver's recorded ids, read only; ``None`` when its pointer is unreadable."""
    key = (namespace, json.dumps(cursor.ids, sort_keys=True))
    found = _PEERS.get(key)
    if found is not None and found.instance is instance:
        return found
    try:
        found = RecordedIds(
            instance, namespace, cursor.ids, now=datetime.fromtimestamp(now, timezone.utc), legacy=cursor.legacy_seen
        )
    except InvalidRecordedIds:
        return None
    for stale in [k for k in _PEERS if k[0] == namespace]:
        del _PEERS[stale]
    _PEERS[key] = found
    return found


@dataclass
class Handover:
    """What the sensor's tick does about streams: ``deferred`` (a stream records the topic: the
    tick records nothing from it, ``reason`` says why), else ``seen`` (its ids and the streams')."""

    deferred: bool
    seen: LayeredIds
    reason: str = ""
    holders: list[str] = field(default_factory=list)


def sensor_handover(
    instance: Any, instance_name: str, cursor: SensorCursor, ids: RecordedIds, *, now: float
) -> Handover:
    """Called by the sensor's tick: adopt the streams' positions into ``cursor``, and say whether
    the tick must leave the topic to a stream holding a live lease.

    Without any stream ever started this costs one key-value read."""
    splits = registered_splits(instance, instance_name)
    if not splits:
        return Handover(deferred=False, seen=LayeredIds(ids))
    states = stream_states(instance, instance_name, splits)
    cursor.position = merged_position(cursor.position, [state.position for state in states.values()])
    live = [holder for holder in read_leases(instance, instance_name, splits).values() if holder.live(now)]
    if live:
        holders = [holder.describe(now) for holder in live]
        reason = (
            f"airstream: `airstream stream` records the topic now ({'; '.join(holders)}); this tick records "
            "nothing from it and keeps the stream's position, and takes over once the stream stops"
        )
        return Handover(deferred=True, seen=LayeredIds(ids), reason=reason, holders=holders)
    peers = [
        found
        for split, state in states.items()
        if state.ids and (found := peer_ids(instance, ids_namespace(instance_name, split), state, now=now)) is not None
    ]
    return Handover(deferred=False, seen=LayeredIds(ids, peers))


def stream_peers(
    instance: Any,
    instance_name: str,
    split: str,
    sensor_cursor: SensorCursor | None,
    sensor_namespace: str,
    *,
    now: float,
) -> tuple[list[Position | None], list[RecordedIds]]:
    """For a stream starting on ``split``: the positions of the sensor and of the other splits that
    share a partition, and their recorded ids."""
    positions: list[Position | None] = []
    peers: list[RecordedIds] = []
    if sensor_cursor is not None:
        positions.append(sensor_cursor.position)
        found = peer_ids(instance, sensor_namespace, sensor_cursor, now=now)
        if found is not None:
            peers.append(found)
    for other, state in stream_states(instance, instance_name).items():
        if other == split or not overlaps(other, split):
            continue
        positions.append(state.position)
        if state.ids and (found := peer_ids(instance, ids_namespace(instance_name, other), state, now=now)):
            peers.append(found)
    return positions, peers


def _sensor_states(instance: Any, sensor_name: str) -> list[Any]:
    try:
        return [state for state in instance.all_instigator_state() if getattr(state, "name", None) == sensor_name]
    except Exception:  # an instance without schedule storage: no sensor state to read
        return []


def sensor_tick_in_flight(instance: Any, sensor_name: str) -> bool:
    """Whether Dagster's daemon has a tick of ``sensor_name`` started and not finished."""
    for state in _sensor_states(instance, sensor_name):
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1)
        if ticks and getattr(ticks[0].status, "value", "") == "STARTED":
            return True
    return False


def sensor_committed_cursor(instance: Any, sensor_name: str) -> SensorCursor | None:
    """The cursor of the sensor's last committed tick, from Dagster's instigator state."""
    for state in _sensor_states(instance, sensor_name):
        raw = getattr(getattr(state, "instigator_data", None), "cursor", None)
        if raw:
            try:
                return SensorCursor.parse(raw)
            except InvalidCursor:
                return None
    return None


def wait_for_sensor_tick(
    instance: Any,
    sensor_name: str,
    *,
    timeout: float,
    stop_requested: Callable[[], bool] = lambda: False,
    say: Callable[[str], None] = print,
) -> bool:
    """Wait until no tick of the sensor is in flight (it started before this stream's lease, so it
    may still store what it read); True when none is, False after ``timeout`` or a stop."""
    deadline = time.monotonic() + timeout
    told = False
    while sensor_tick_in_flight(instance, sensor_name):
        if stop_requested() or time.monotonic() > deadline:
            return False
        if not told:
            say(f"waiting for the tick of {sensor_name} in flight to finish (at most {timeout:g} s)")
            told = True
        time.sleep(0.5)
    return True
