"""The interface every event source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from airstream.schemas import Event

# A source's own notion of progress (Kafka: partition → next offset), stored in the sensor's cursor.
# It must be JSON-serialisable.
Position = dict[str, Any]


class EventSourceUnavailable(RuntimeError):
    """The source could not be read (broker unreachable, bad credentials, unknown topic…).

    Nothing was consumed: the next sensor tick starts from the same position.
    """


@dataclass(frozen=True)
class RejectedMessage:
    """A message that is not a usable event. It stays on the source; this says where it is."""

    where: str
    reason: str


@dataclass
class EventBatch:
    """Events read in one go, in source order, and the position after them.

    ``inferred`` holds the ids of events the source deduced rather than read (the REST source's
    ``up_for_retry`` for a task's earlier tries): the consumer drops one when the same try's own
    terminal event is already recorded (a try a person cleared ended ``success`` or ``failed``).
    """

    events: list[Event]
    position: Position
    rejected: list[RejectedMessage] = field(default_factory=list)
    caught_up: bool = True
    inferred: frozenset[str] = frozenset()


class EventSource(ABC):
    """Reads events after a position; never commits anything itself.

    The caller (the sensor) stores the returned position and passes it back next time, so the
    caller's storage is the single source of truth for progress.
    """

    @abstractmethod
    def read(self, position: Position | None) -> EventBatch:
        """Read the next events after ``position`` (``None``: from the beginning)."""

    @abstractmethod
    def describe(self) -> str:
        """A short human description, e.g. ``kafka://host:9092/airflow.events``."""
