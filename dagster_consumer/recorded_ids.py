"""The ids of the events the sensor recorded, kept by event time in Dagster's key-value store.

Deduplication needs every id recorded within the horizon (30 days by default: a spool flushed
after a long outage, a REST sweep, a redelivery), which is far too much for the cursor Dagster
stores with every tick. So the ids live in the instance's key-value store
(:mod:`airstream.dagster_consumer.dagster_kvs`), in immutable *segments*, and the cursor keeps
only a small pointer to the live ones (:class:`RecordedIds.pointer`, a few hundred bytes).

How it stays exact across crashes. Dagster's daemon evaluates a tick, stores its asset events,
then its cursor. A tick that records new ids writes them as a new segment into a slot the
committed cursor does not use, and returns a cursor naming that segment:

* the tick dies before its cursor is stored: the committed cursor still names the old segments
  only, so the tick's ids are not taken as recorded. But the daemon may have stored some of its
  asset events. The next tick, starting from the same cursor, finds the dead tick's segment (a
  small ``last`` key names the newest segment written and the generation it was based on), and
  reads from the event log what was stored after the storage id the dead tick saw
  (:func:`stored_since`): those events count as recorded, on the asset keys they reached; the rest
  are recorded again. An event the dead tick stored on some of its keys only gets the others when
  it is read again, also by a later tick (a small ``carried`` key keeps what is known of it);
* the cursor is stored: the new segment is live.

Segments are merged eight at a time into one of the next level (about log8(n) rewrites per id),
dropping ids older than the horizon plus a day; a segment whose newest id is older goes whole.
Slots a merge freed are blanked by the next tick that writes. A tick that records nothing writes
nothing. Decoded segments are kept in memory between ticks (the code server is long-lived).

Events older than the horizon are not looked up here: the sensor asks the event log
(:class:`~airstream.dagster_consumer.event_log_ids.EventLogIds`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from dagster import AssetKey

from airstream.dagster_consumer.dagster_kvs import latest_storage_id, read_values, write_values
from airstream.dagster_consumer.event_log_ids import EventLogIds, stored_since
from airstream.dagster_consumer.sources.base import event_time

DEFAULT_DEDUPLICATION_HORIZON = timedelta(days=30)
Horizon = timedelta | float  # a duration, or seconds
GRACE = timedelta(days=1)  # ids are kept this long past the horizon, so clock and date skews never matter
FANOUT = 8
FIRST_STORE = "s0"
_ENTRY = struct.Struct(">QI")  # the id's first 64 bits, the event's hour (hours since 1970)
_DIGEST_BYTES = 8

# (store, namespace, slot, generation) → {digest: hour}: segments decoded in this process.
_DECODED: dict[tuple[str, str, int, int], dict[int, int]] = {}


class InvalidRecordedIds(ValueError):
    """The pointer in the cursor, or a segment it names, cannot be read."""


def check_horizon(horizon: object) -> timedelta:
    """``horizon`` as a ``timedelta`` (seconds are accepted); ``ValueError`` unless it is a positive,
    finite duration: deduplication cannot be turned off."""
    if isinstance(horizon, (int, float)) and not isinstance(horizon, bool) and math.isfinite(horizon):
        horizon = timedelta(seconds=horizon)
    if not isinstance(horizon, timedelta) or horizon <= timedelta(0):
        raise ValueError(
            f"deduplication_horizon must be a positive duration, a timedelta or seconds (got {horizon!r}); "
            f"deduplication cannot be turned off, the default is {DEFAULT_DEDUPLICATION_HORIZON.days} days"
        )
    return horizon


def digest(event_id: str) -> int:
    """The first 64 bits of an event id (a uuid; any other string is hashed to one first)."""
    try:
        raw = uuid.UUID(event_id).bytes
    except ValueError:
        raw = uuid.uuid5(uuid.NAMESPACE_URL, event_id).bytes
    return int.from_bytes(raw[:_DIGEST_BYTES], "big")


def hour_of(when: datetime) -> int:
    """Hours since 1970 (UTC) of ``when``; naive times are UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0, int(when.timestamp() // 3600))


@dataclass(frozen=True)
class Segment:
    """One stored set of ids: its slot (the key-value store key ends in it), the generation that
    wrote it, its merge level, the newest event hour it holds and how many ids."""

    slot: int
    generation: int
    level: int
    newest_hour: int
    count: int

    def to_json(self) -> list[int]:
        return [self.slot, self.generation, self.level, self.newest_hour, self.count]


class RecordedIds:
    """The set of event ids the sensor recorded within the horizon.

    Open one per tick from the cursor's pointer, use it as the consume step's set of seen ids
    (``in``, :meth:`add`), then :meth:`commit` and put the returned pointer in the cursor.

    Example::

        ids = RecordedIds(context.instance, "prod__airflow_event_sensor", cursor.ids, now=now)
        outcome = consume(source, cursor.position, seen=ids, recorder=recorder, already_stored=...)
        cursor.ids = ids.commit()
    """

    def __init__(
        self,
        instance: Any,
        namespace: str,
        pointer: Mapping[str, Any] | None,
        *,
        horizon: timedelta = DEFAULT_DEDUPLICATION_HORIZON,
        now: datetime,
        legacy: Iterable[bytes] = (),
    ) -> None:
        self.instance = instance
        self.namespace = namespace
        self.horizon = check_horizon(horizon)
        self.now = now if now.tzinfo is not None else now.replace(tzinfo=timezone.utc)
        self.store, self.generation, segments, self._retired = _parse_pointer(pointer)
        self.degraded = False  # a live segment was overwritten: every event is checked in the event log
        self._segments = self._load(segments)
        self._pending: dict[int, int] = {}
        for raw in legacy:  # ids of a cursor from before this store: kept for a horizon from now
            self._pending[int.from_bytes(raw[:_DIGEST_BYTES], "big")] = hour_of(self.now)
        self._resolved: dict[int, tuple[int, set[AssetKey]]] = {}
        self._doubt_after: int | None = None
        self._resolve_dead_tick()
        self._load_carried()

    # --- the set ---------------------------------------------------------------------------------

    def __contains__(self, event_id: object) -> bool:
        """Whether ``event_id`` was recorded (within the horizon), without remembering it."""
        if not isinstance(event_id, str):
            return False
        value = digest(event_id)
        if value in self._resolved:  # a dead tick stored it, maybe on some of its keys only
            return False
        return value in self._pending or any(value in ids for _, ids in self._segments)

    def add(self, event_id: str, when: datetime | None = None) -> bool:
        """Remember ``event_id`` (of an event that happened ``when``); False if already recorded."""
        if event_id in self:
            return False
        value = digest(event_id)
        self._pending[value] = hour_of(when or self.now)
        self._resolved.pop(value, None)
        return True

    def __len__(self) -> int:
        return len(self._pending) + sum(len(ids) for _, ids in self._segments)

    def is_old(self, when: datetime) -> bool:
        """Whether an event of ``when`` is older than the horizon (ask the event log about it)."""
        when = when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)
        return when < self.now - self.horizon

    def stored_by_dead_tick(self, event_id: str) -> set[AssetKey]:
        """The asset keys a tick that died before its cursor was stored recorded ``event_id`` on
        (empty for any other event)."""
        found = self._resolved.get(digest(event_id))
        return set(found[1]) if found else set()

    def take_recorded(self, ids: Mapping[int, int]) -> int:
        """Count ``ids`` (digest → event hour, recorded by someone else: ``airstream replay``) as
        recorded; those older than the horizon are left to the event log. Returns how many were new."""
        keep_from = hour_of(self.now - self.horizon - GRACE)
        added = 0
        for value, hour in ids.items():
            if hour >= keep_from and value not in self._pending and not any(value in s for _, s in self._segments):
                self._pending[value] = hour
                added += 1
        return added

    @property
    def new_ids(self) -> int:
        """How many ids :meth:`commit` will write."""
        return len(self._pending) + len(self._resolved)

    # --- storing ---------------------------------------------------------------------------------

    def pointer(self) -> dict[str, Any]:
        """What the cursor keeps: the live segments, without storing anything."""
        return {
            "store": self.store,
            "g": self.generation,
            "segs": [segment.to_json() for segment, _ in self._segments],
            **({"retired": sorted(self._retired)} if self._retired else {}),
        }

    def commit(self) -> dict[str, Any]:
        """Write the new ids (and merges) as new segments; return the pointer for the cursor.

        Nothing is written when nothing was added. Call once, at the end of the tick."""
        carried = dict(self._resolved)  # stored by a dead tick, not read again yet: keys known so far
        for value, (hour, _) in carried.items():
            self._pending.setdefault(value, hour)
        self._resolved.clear()
        if not self._pending:
            return self.pointer()
        base_slots = {segment.slot for segment, _ in self._segments}
        generation = self.generation + 1
        watermark = self._doubt_after if self._doubt_after is not None else latest_storage_id(self.instance)
        writes: dict[str, str] = {}
        used: set[int] = set()

        def place(level: int, ids: dict[int, int]) -> tuple[Segment, dict[int, int]]:
            slot = _lowest_free(base_slots | used)
            used.add(slot)
            segment = Segment(slot, generation, level, max(ids.values(), default=0), len(ids))
            writes[self._key(slot)] = _encode(self.generation, watermark, ids)
            _DECODED[(self.store, self.namespace, slot, generation)] = ids
            return segment, ids

        fresh = place(0, dict(self._pending))  # this tick's new ids
        live = [*self._segments, fresh]
        keep_from = hour_of(self.now - self.horizon - GRACE)
        retired = {segment.slot for segment, _ in live if segment.newest_hour < keep_from}
        live = [(segment, ids) for segment, ids in live if segment.newest_hour >= keep_from]
        level = 0
        while level <= max((segment.level for segment, _ in live), default=0):
            group = [(segment, ids) for segment, ids in live if segment.level == level]
            if len(group) >= FANOUT:
                merged = {value: hour for _, ids in group for value, hour in ids.items() if hour >= keep_from}
                retired |= {segment.slot for segment, _ in group}
                live = [entry for entry in live if entry[0].level != level]
                if merged:
                    live.append(place(level + 1, merged))
            level += 1
        for slot in self._retired - used:
            writes[self._key(slot)] = ""  # freed by the previous (committed) tick: reclaim its space
        writes[self._last_key()] = f"{self.generation} {watermark} {fresh[0].slot}"
        if carried or self._carried_loaded:
            writes[self._carried_key()] = _encode_carried(generation, carried)
        write_values(self.instance, writes)
        self._segments = sorted(live, key=lambda entry: (-entry[0].level, entry[0].slot))
        self._retired = retired - {segment.slot for segment, _ in self._segments}
        self.generation = generation
        self._pending = {}
        return self.pointer()

    # --- reading ---------------------------------------------------------------------------------

    def _carried_key(self) -> str:
        return f"airstream/recorded_ids/{self.namespace}/{self.store}/carried"

    def _load_carried(self) -> None:
        """Ids a dead tick stored that the tick after it did not read again, with the keys they
        reached: they stay "stored on those keys only" until read (a read records the rest)."""
        self._carried_loaded = False
        value = read_values(self.instance, [self._carried_key()]).get(self._carried_key(), "")
        base, carried = _decode_carried(value)
        if base != self.generation or not carried:
            return
        self._carried_loaded = True
        for digest_value, entry in carried.items():
            self._resolved.setdefault(digest_value, entry)

    def _last_key(self) -> str:
        return f"airstream/recorded_ids/{self.namespace}/{self.store}/last"

    def _key(self, slot: int) -> str:
        return f"airstream/recorded_ids/{self.namespace}/{self.store}/{slot}"

    def _load(self, segments: list[Segment]) -> list[tuple[Segment, dict[int, int]]]:
        wanted = {(self.store, self.namespace, s.slot, s.generation) for s in segments}
        for cached in [key for key in _DECODED if key[:2] == (self.store, self.namespace) and key not in wanted]:
            del _DECODED[cached]
        missing = [s for s in segments if (self.store, self.namespace, s.slot, s.generation) not in _DECODED]
        stored = read_values(self.instance, [self._key(s.slot) for s in missing])
        for segment in missing:
            decoded = _decode(stored.get(self._key(segment.slot), ""))
            if decoded is None or decoded[0] != segment.generation - 1:
                self.degraded = True  # overwritten or gone: the event log answers instead
                _DECODED[(self.store, self.namespace, segment.slot, segment.generation)] = {}
                continue
            _DECODED[(self.store, self.namespace, segment.slot, segment.generation)] = decoded[2]
        return [(s, _DECODED[(self.store, self.namespace, s.slot, s.generation)]) for s in segments]

    def _resolve_dead_tick(self) -> None:
        """A segment a tick based on this same cursor wrote and whose cursor never got stored:
        keep the ids whose asset events reached the event log. The small ``last`` key names the
        newest segment written, so a tick reads a segment only after a tick died."""
        marker = read_values(self.instance, [self._last_key()]).get(self._last_key(), "").split()
        if len(marker) != 3 or not all(part.lstrip("-").isdigit() for part in marker):
            return
        base, _, slot = (int(part) for part in marker)
        if base != self.generation:
            return
        decoded = _decode(read_values(self.instance, [self._key(slot)]).get(self._key(slot), ""))
        if decoded is None or decoded[0] != self.generation:
            return
        _, watermark, in_doubt = decoded
        self._doubt_after = watermark
        for event_id, keys in stored_since(self.instance, watermark).items():
            value = digest(event_id)
            if value in in_doubt:
                self._resolved[value] = (in_doubt[value], keys)


def _encode_carried(base: int, carried: Mapping[int, tuple[int, set[AssetKey]]]) -> str:
    entries = {str(value): [hour, sorted(list(key.path) for key in keys)] for value, (hour, keys) in carried.items()}
    return json.dumps({"base": base, "ids": entries}, separators=(",", ":"))


def _decode_carried(value: str) -> tuple[int | None, dict[int, tuple[int, set[AssetKey]]]]:
    try:
        document = json.loads(value) if value else {}
        carried = {
            int(digest_value): (int(hour), {AssetKey(list(path)) for path in paths})
            for digest_value, (hour, paths) in document.get("ids", {}).items()
        }
        return int(document["base"]), carried
    except (ValueError, KeyError, TypeError):
        return None, {}


def encode_ids(ids: Mapping[int, int]) -> str:
    """``{digest: hour}`` as text for the key-value store (what :func:`decode_ids` reads)."""
    return _encode(-1, 0, ids)


def decode_ids(value: str) -> dict[int, int]:
    """The ``{digest: hour}`` of :func:`encode_ids`' text; empty for a blank or unreadable value."""
    decoded = _decode(value)
    return decoded[2] if decoded else {}


def _lowest_free(taken: set[int]) -> int:
    slot = 0
    while slot in taken:
        slot += 1
    return slot


def _encode(base: int, watermark: int, ids: Mapping[int, int]) -> str:
    raw = b"".join(_ENTRY.pack(value, hour) for value, hour in ids.items())
    return f"{base} {watermark} {base64.b64encode(raw).decode()}"


def _decode(value: str) -> tuple[int, int, dict[int, int]] | None:
    """``(base generation, watermark, {digest: hour})``, or None for a blank or foreign value."""
    try:
        base, watermark, encoded = value.split(" ", 2)
        raw = base64.b64decode(encoded.encode(), validate=True)
        if len(raw) % _ENTRY.size:
            return None
        return int(base), int(watermark), dict(_ENTRY.iter_unpack(raw))
    except (ValueError, binascii.Error):
        return None


def _parse_pointer(pointer: Mapping[str, Any] | None) -> tuple[str, int, list[Segment], set[int]]:
    if not pointer:
        # Always the same store for a new cursor: a first tick that dies before its cursor is
        # stored is then found by the next first tick, as any other dead tick is.
        return FIRST_STORE, 0, [], set()
    try:
        store = pointer["store"]
        generation = pointer["g"]
        if not isinstance(store, str) or not isinstance(generation, int):
            raise TypeError("store must be a string and g a number")
        segments = [Segment(*(int(part) for part in entry)) for entry in pointer["segs"]]
        retired = {int(slot) for slot in pointer.get("retired", [])}
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidRecordedIds(f"the cursor's ids pointer {dict(pointer)!r} is unreadable ({error})") from error
    return store, generation, segments, retired


def stored_check(
    ids: RecordedIds,
    lookup: EventLogIds,
    *,
    dead_batches: Callable[[str], set[AssetKey]] | None = None,
    check_every: bool = False,
) -> Callable[[Any, list[Any]], set[AssetKey]]:
    """The ``already_stored`` of the consume step for a driver deduplicating with ``ids``: the asset
    keys that already hold an event in Dagster although ``ids`` does not list it.

    Asked of ``lookup`` (the assets' own history) for every event when ``check_every`` (the first
    batches after a take-over), when ``ids`` cannot answer (degraded) or the event is older than the
    horizon; otherwise only for the keys a tick or batch that died after storing
    (``ids.stored_by_dead_tick``, ``dead_batches`` of other drivers) may have written: on SQLite a
    process killed inside a write can leave an event in the run's log but not in the asset index,
    and such an event must be recorded again.
    """

    def already_stored(event: Any, translated: list[Any]) -> set[AssetKey]:
        keys = {asset_event.asset_key for asset_event in translated}
        if check_every or ids.degraded or ids.is_old(event_time(event)):
            return lookup.keys_holding(event.event_id, keys)
        held = set(ids.stored_by_dead_tick(event.event_id))
        if dead_batches is not None:
            held |= dead_batches(event.event_id)
        held &= keys
        return lookup.keys_holding(event.event_id, held) if held else held

    return already_stored
