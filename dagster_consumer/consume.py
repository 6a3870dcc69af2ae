"""The one consume step: read a batch from a source at a position, drop what was already
recorded, translate the rest, and hand back the asset events with the source's next position.

Every driver uses it: the sensor's Kafka read, its REST fallback poll and its gap-repair sweep
(and later ``airstream stream`` and ``airstream replay``), so a fix to ordering, deduplication or
bad-message handling lands once. Storing is the driver's part (the sensor returns the asset events
and the cursor to Dagster, which stores both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from dagster import AssetCheckEvaluation, AssetKey, AssetMaterialization, AssetObservation

from airstream.dagster_consumer.late_events import is_late, is_superseded
from airstream.dagster_consumer.mapping_checks import MissingMappedTasks
from airstream.dagster_consumer.mappings import AssetMappings
from airstream.dagster_consumer.sources.base import (
    EventSource,
    OffsetGap,
    Position,
    RejectedMessage,
    event_time,
)
from airstream.dagster_consumer.translate import AssetEvent, order_for_translation, translate
from airstream.schemas import DagRunEvent, Event


class EventIds(Protocol):
    """The ids already recorded: :class:`~airstream.dagster_consumer.recorded_ids.RecordedIds`
    (the sensor's, in Dagster's key-value store) or a
    :class:`~airstream.dagster_consumer.cursor.SeenEvents` (in memory)."""

    def __contains__(self, event_id: object) -> bool: ...

    def add(self, event_id: str, when: datetime | None = None) -> bool: ...


# Given an event not in the ids and its translation, the asset keys that already hold it in
# Dagster (an event older than the horizon, one a dead tick stored): those are not recorded again.
AlreadyStored = Callable[[Event, list[AssetEvent]], set[AssetKey]]


@dataclass
class Recorder:
    """What the step needs besides the source: whose events, mapped how, linked where.

    ``missing_tasks`` remembers the missing task mappings already warned about; share one per
    process so each is reported once.
    """

    instance_name: str
    mappings: AssetMappings
    webserver_url: str | None = None
    missing_tasks: MissingMappedTasks = field(default_factory=MissingMappedTasks)


@dataclass
class ConsumeOutcome:
    """What one consume step read, recorded and dropped, and where the source stands now."""

    source: str
    position: Position
    asset_events: list[AssetEvent] = field(default_factory=list)
    read: int = 0
    recorded: int = 0
    duplicates: int = 0
    late: int = 0
    superseded: int = 0
    foreign: int = 0
    rejected: list[RejectedMessage] = field(default_factory=list)
    unknown_types: list[RejectedMessage] = field(default_factory=list)
    gaps: list[OffsetGap] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    caught_up: bool = True
    already_in_dagster: int = 0
    dead_lettered: int = 0
    ends: dict[str, int] = field(default_factory=dict)
    newest_at: dict[str, datetime] = field(default_factory=dict)

    def lag(self) -> dict[str, int]:
        """Per partition, the messages on the topic after the position (empty for sources without
        offsets)."""
        offsets = {str(p): int(o) for p, o in (self.position or {}).items() if isinstance(o, int)}
        return {p: max(0, end - offsets.get(p, 0)) for p, end in sorted(self.ends.items())}

    def summary(self) -> str:
        """One log line, e.g. ``3 event(s) recorded as 5 asset event(s); 1 duplicate(s), ...``."""
        return (
            f"{self.recorded} event(s) recorded as {len(self.asset_events)} asset event(s); "
            f"{self.duplicates} duplicate(s)"
            + (f" ({self.already_in_dagster} found in Dagster's event log)" if self.already_in_dagster else "")
            + f", {self.late} late, "
            + (f"{self.superseded} inferred retries superseded, " if self.superseded else "")
            + f"{self.foreign} from other instances, "
            f"{len(self.rejected)} rejected, {len(self.unknown_types)} of unknown type"
            + (f", {len(self.gaps)} offset gap(s)" if self.gaps else "")
            + f"; {'caught up' if self.caught_up else 'more to read'}"
        )


def records_written(asset_events: Sequence[object]) -> str:
    """What a batch of asset events writes, e.g. ``9 record(s): 3 materialization(s), 2 observation(s),
    4 check evaluation(s)``."""
    kinds = (AssetMaterialization, AssetObservation, AssetCheckEvaluation)
    materializations, observations, evaluations = (sum(isinstance(e, kind) for e in asset_events) for kind in kinds)
    return (
        f"{len(asset_events)} record(s): {materializations} materialization(s), "
        f"{observations} observation(s), {evaluations} check evaluation(s)"
    )


def consume(
    source: EventSource,
    position: Position | None,
    *,
    seen: EventIds,
    recorder: Recorder,
    already_stored: AlreadyStored | None = None,
) -> ConsumeOutcome:
    """Read ``source`` after ``position`` and translate what ``seen`` does not hold yet.

    ``seen`` (the ids already recorded) is updated in place with every event recorded, with the
    event's time (:func:`event_time`). ``already_stored``, when given, is asked about each event
    ``seen`` does not hold: an asset event whose key it names is not produced again, and an event
    all of whose asset events it names counts as a duplicate.
    Events of another instance are left to that instance's sensor; a ``running`` event whose task
    try or DAG run already ended is late and not recorded, and so is an event the source inferred
    (``batch.inferred``) that the same try's recorded terminal event contradicts (see
    :mod:`airstream.dagster_consumer.late_events`). Raises
    :class:`~airstream.dagster_consumer.sources.base.EventSourceUnavailable` when the source
    cannot be read; nothing is consumed then.

    Example::

        outcome = consume(kafka_source, position, seen=SeenEvents(), recorder=recorder)
        store(outcome.asset_events)
    """
    batch = source.read(position)
    outcome = ConsumeOutcome(
        source=source.describe(),
        position=batch.position,
        read=len(batch.events),
        dead_lettered=batch.dead_lettered,
        ends=dict(batch.ends),
        newest_at=dict(batch.newest_at),
        rejected=list(batch.rejected),
        unknown_types=list(batch.unknown_types),
        gaps=list(batch.gaps),
        caught_up=batch.caught_up,
    )
    for event in order_for_translation(batch.events):
        if event.instance != recorder.instance_name:
            outcome.foreign += 1
            continue
        if event.event_id in batch.inferred and event.event_id not in seen and is_superseded(event, seen):
            outcome.superseded += 1
            continue
        if event.event_id in seen:
            outcome.duplicates += 1
            continue
        when = event_time(event)
        if is_late(event, seen):
            seen.add(event.event_id, when)
            outcome.late += 1
            continue
        try:
            translated = translate(event, mappings=recorder.mappings, webserver_url=recorder.webserver_url)
        except Exception as error:  # a valid event that cannot be translated is poison too: skip, never stall
            seen.add(event.event_id, when)
            where = f"event {event.event_id} ({event.event_type.value} of {event.dag_id}/{event.run_id})"
            outcome.rejected.append(RejectedMessage(where=where, reason=f"cannot be translated: {error!r}"))
            continue
        if already_stored is not None:
            held = already_stored(event, translated)
            if held:
                translated = [asset_event for asset_event in translated if asset_event.asset_key not in held]
                if not translated:
                    seen.add(event.event_id, when)
                    outcome.duplicates += 1
                    outcome.already_in_dagster += 1
                    continue
        seen.add(event.event_id, when)
        outcome.recorded += 1
        if isinstance(event, DagRunEvent):
            outcome.warnings.extend(recorder.missing_tasks.check(event, recorder.mappings))
        outcome.asset_events.extend(translated)
    return outcome
