"""The sensor's cursor (the sources' positions, a pointer to the recorded event ids, running
totals) and :class:`SeenEvents`, an in-memory set of event ids.

Dagster stores the cursor with each tick, so it is the single record of progress; it stays small
because the recorded event ids live in Dagster's key-value store
(:mod:`airstream.dagster_consumer.recorded_ids`), not in it.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

_DIGEST_BYTES = 8  # 64 bits of a uuid5 per id: collisions are negligible inside the window
DEFAULT_DEDUPLICATION_WINDOW = 10_000  # the former count window; see recorded_ids for the horizon
MAX_ERROR_CHARS = 300


class InvalidCursor(ValueError):
    """The stored cursor cannot be read."""


@dataclass
class SeenEvents:
    """A bounded, ordered, in-memory set of event ids (``airstream replay`` keeps one in its state file)."""

    window: int = DEFAULT_DEDUPLICATION_WINDOW
    _order: deque[bytes] = field(default_factory=deque)
    _members: set[bytes] = field(default_factory=set)

    def add(self, event_id: str, when: datetime | None = None) -> bool:
        """Remember ``event_id`` (``when`` is ignored: the bound is a count); False if it was already seen."""
        digest = _digest(event_id)
        if digest in self._members:
            return False
        self._order.append(digest)
        self._members.add(digest)
        while len(self._order) > self.window:
            self._members.discard(self._order.popleft())
        return True

    def __contains__(self, event_id: object) -> bool:
        """Whether ``event_id`` is in the window (without remembering it)."""
        return isinstance(event_id, str) and _digest(event_id) in self._members

    def __len__(self) -> int:
        return len(self._order)

    def encode(self) -> str:
        return base64.b64encode(b"".join(self._order)).decode()

    @classmethod
    def decode(cls, encoded: str, window: int) -> SeenEvents:
        seen = cls(window=window)
        if not isinstance(encoded, str):
            raise ValueError(f"seen must be a base64 string, got {type(encoded).__name__}")
        raw = base64.b64decode(encoded.encode(), validate=True)
        if len(raw) % _DIGEST_BYTES:
            raise ValueError(f"seen holds {len(raw)} bytes, not a whole number of {_DIGEST_BYTES}-byte ids")
        for start in range(0, len(raw), _DIGEST_BYTES):
            digest = raw[start : start + _DIGEST_BYTES]
            seen._order.append(digest)
            seen._members.add(digest)
        while len(seen._order) > window:
            seen._members.discard(seen._order.popleft())
        return seen


@dataclass
class SensorCursor:
    """What Dagster stores with every tick, kept to a few hundred bytes whatever the history.

    ``position``: the event source's (Kafka: partition → next offset); ``ids``: the pointer to the
    recorded event ids kept in Dagster's key-value store
    (:class:`~airstream.dagster_consumer.recorded_ids.RecordedIds`); ``rest``: the REST source's
    state when the sensor uses one, ``{"position": ..., "swept_at": unix seconds of the last
    gap-repair sweep that caught up}``; ``totals``: running counts (recorded, duplicates, skipped,
    dead-lettered, rejected, gaps); ``times``: per partition, the newest event time recorded (unix
    seconds), the start of a gap's time range; ``health_at``: when the last health observation was
    recorded; ``error``: the last error, shortened; ``replayed``: how many entries of ``airstream
    replay``'s inbox the sensor took, and how many of those it gave the space back of
    (:mod:`airstream.dagster_consumer.replayed_ids`). Stored as compact JSON, empty parts left out.

    A cursor of the earlier form (``seen``, a window of the last event ids) is read as it is: its
    ids come back in ``legacy_seen`` and go into the key-value store on the next tick.
    """

    position: dict[str, Any] | None
    ids: dict[str, Any] | None = None
    rest: dict[str, Any] | None = None
    totals: dict[str, int] = field(default_factory=dict)
    times: dict[str, int] = field(default_factory=dict)
    health_at: float | None = None
    error: str = ""
    replayed: list[int] = field(default_factory=lambda: [0, 0])
    legacy_seen: list[bytes] = field(default_factory=list)

    @classmethod
    def parse(cls, raw: str | None) -> SensorCursor:
        """Read a stored cursor (``None`` or empty: a new sensor); :class:`InvalidCursor` otherwise."""
        if not raw:
            return cls(position=None)
        try:
            document = json.loads(raw)
            position = document["position"]
            _check_object("position", position)
            ids = document.get("ids")
            _check_object("ids", ids)
            rest = document.get("rest")
            _check_object("rest", rest)
            legacy = SeenEvents.decode(document["seen"], sys.maxsize)._order if "seen" in document else []
            totals = {str(k): int(v) for k, v in document.get("totals", {}).items()}
            times = {str(k): int(v) for k, v in document.get("times", {}).items()}
            health_at = document.get("health_at")
            if health_at is not None and not isinstance(health_at, (int, float)):
                raise ValueError(f"health_at must be a number, got {health_at!r}")
            error = str(document.get("error", ""))
            replayed = [int(n) for n in document.get("replayed", [0, 0])]
            if len(replayed) != 2:
                raise ValueError(f"replayed must be two numbers, got {replayed!r}")
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error_:
            raise InvalidCursor(
                f"the airstream sensor cursor is unreadable ({error_}); to start over, reset the sensor's "
                "cursor in the Dagster UI (events already recorded within the deduplication horizon are still "
                "recognised only if the new cursor's ids are; older ones are checked in the event log)"
            ) from error_
        return cls(
            position=position,
            ids=ids,
            rest=rest,
            totals=totals,
            times=times,
            health_at=health_at,
            error=error,
            replayed=replayed,
            legacy_seen=list(legacy),
        )

    def count(self, **counts: int) -> None:
        """Add to the running totals (zeros are not stored)."""
        for name, value in counts.items():
            if value:
                self.totals[name] = self.totals.get(name, 0) + value

    def serialize(self) -> str:
        """Compact JSON; ``legacy_seen`` is never written back."""
        document: dict[str, Any] = {"position": self.position}
        if self.ids is not None:
            document["ids"] = self.ids
        if self.rest is not None:
            document["rest"] = self.rest
        if self.totals:
            document["totals"] = self.totals
        if self.times:
            document["times"] = self.times
        if self.health_at is not None:
            document["health_at"] = self.health_at
        if self.error:
            document["error"] = self.error[:MAX_ERROR_CHARS]
        if self.replayed != [0, 0]:
            document["replayed"] = self.replayed
        return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _check_object(name: str, value: object) -> None:
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{name} must be an object, got {value!r}")


def _digest(event_id: str) -> bytes:
    try:
        return uuid.UUID(event_id).bytes[:_DIGEST_BYTES]
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, event_id).bytes[:_DIGEST_BYTES]
