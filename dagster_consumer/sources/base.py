"""The interface every event source implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airstream.schemas import Event

# A source's own notion of progress (Kafka: partition → next offset), stored in the sensor's cursor.
# It must be JSON-serialisable.
Position = dict[str, Any]


def event_time(event: Event) -> datetime:
    """When the event happened in Airflow: its end, else its start, else when it was sent (UTC)."""
    when = event.end_date or event.start_date or event.emitted_at
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


class EventSourceUnavailable(RuntimeError):
    """The source could not be read (broker unreachable, bad credentials, unknown topic…).

    Nothing was consumed: the next sensor tick starts from the same position.
    """


@dataclass(frozen=True)
class RejectedMessage:
    """A message that is not a usable event. It stays on the source; this says where it is."""

    where: str
    reason: str


@dataclass(frozen=True)
class OffsetGap:
    """A stretch of a partition the source could no longer read: the stored position was out of
    the broker's range (retention passed it, or the topic was recreated), so reading resumed at
    the earliest offset the broker still has. What lay in between is lost to the topic."""

    partition: int
    stored_offset: int
    resumed_offset: int
    reason: str
    first_event_at: datetime | None = None  # when the first event read after the gap happened

    def describe(self) -> str:
        return (
            f"partition {self.partition}: stored offset {self.stored_offset} is out of range ({self.reason}); "
            f"resumed from offset {self.resumed_offset}, the earliest the broker still has"
        )


@dataclass
class EventBatch:
    """Events read in one go, in source order, and the position after them.

    ``unknown_types`` lists events of a known major schema version whose event type a newer
    minor version added (skipped, not errors); ``gaps`` the partitions whose stored position the
    broker no longer had.

    ``inferred`` holds the ids of events the source deduced rather than read (the REST source's
    ``up_for_retry`` for a task's earlier tries): the consumer drops one when the same try's own
    terminal event is already recorded (a try a person cleared ended ``success`` or ``failed``).

    Sources with partitions also give ``ends`` (partition → the offset after the last message on
    the topic, for lag) and ``newest_at`` (partition → the newest event time read); ``dead_lettered``
    counts the poison messages copied to a dead-letter topic.
    """

    events: list[Event]
    position: Position
    rejected: list[RejectedMessage] = field(default_factory=list)
    unknown_types: list[RejectedMessage] = field(default_factory=list)
    gaps: list[OffsetGap] = field(default_factory=list)
    caught_up: bool = True
    inferred: frozenset[str] = frozenset()
    ends: dict[str, int] = field(default_factory=dict)
    newest_at: dict[str, datetime] = field(default_factory=dict)
    dead_lettered: int = 0


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
