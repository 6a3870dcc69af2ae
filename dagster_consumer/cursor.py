"""The sensor's cursor: the sources' positions, and a window of recently seen event ids.

Dagster stores the cursor with each tick, so it is the single record of progress. The event-id
window turns at-least-once delivery into exactly-once materializations: a duplicate of any of
the last ``window`` events is recognised and dropped.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

_DIGEST_BYTES = 8  # 64 bits of a uuid5 per id: collisions are negligible inside the window
DEFAULT_DEDUPLICATION_WINDOW = 10_000


class InvalidCursor(ValueError):
    """The stored cursor cannot be read."""


@dataclass
class SeenEvents:
    """A bounded, ordered set of event ids."""

    window: int = DEFAULT_DEDUPLICATION_WINDOW
    _order: deque[bytes] = field(default_factory=deque)
    _members: set[bytes] = field(default_factory=set)

    def add(self, event_id: str) -> bool:
        """Remember ``event_id``; False if it was already seen."""
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
    """``position``: the event source's (Kafka: partition → next offset); ``seen``: the event-id
    window; ``rest``: the REST source's state when the sensor uses one, ``{"position": ...,
    "swept_at": unix seconds of the last gap-repair sweep that caught up}``. Stored as compact
    JSON; ``rest`` is left out when unused, so a Kafka-only cursor keeps its original form."""

    position: dict[str, Any] | None
    seen: SeenEvents
    rest: dict[str, Any] | None = None

    @classmethod
    def parse(cls, raw: str | None, window: int = DEFAULT_DEDUPLICATION_WINDOW) -> SensorCursor:
        if not raw:
            return cls(position=None, seen=SeenEvents(window=window))
        try:
            document = json.loads(raw)
            position = document["position"]
            if position is not None and not isinstance(position, dict):
                raise ValueError(f"position must be an object, got {position!r}")
            seen = SeenEvents.decode(document.get("seen", ""), window)
            rest = document.get("rest")
            if rest is not None and not isinstance(rest, dict):
                raise ValueError(f"rest must be an object, got {rest!r}")
        except (ValueError, KeyError, TypeError, binascii.Error) as error:
            raise InvalidCursor(
                f"the airstream sensor cursor is unreadable ({error}); to start over, reset the sensor's "
                "cursor in the Dagster UI (events already recorded may then be recorded again)"
            ) from error
        return cls(position=position, seen=seen, rest=rest)

    def serialize(self) -> str:
        document: dict[str, Any] = {"position": self.position, "seen": self.seen.encode()}
        if self.rest is not None:
            document["rest"] = self.rest
        return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _digest(event_id: str) -> bytes:
    try:
        return uuid.UUID(event_id).bytes[:_DIGEST_BYTES]
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, event_id).bytes[:_DIGEST_BYTES]
