"""The sensor that turns events from an Airflow instance into Dagster asset events.

It drives the one consume step (:func:`airstream.dagster_consumer.consume.consume`) in one of
three modes, chosen by what the instance has:

* **events**: a Kafka event source only; every tick reads the topic;
* **fallback**: REST access only; every tick polls the REST API
  (:class:`~airstream.dagster_consumer.sources.rest.RestEventSource`);
* **gap repair**: both; every tick reads the topic, and every ``gap_repair_interval`` seconds a
  REST sweep runs through the same step, so what never reached the topic is recorded, and what
  did is dropped as a duplicate.
"""

from __future__ import annotations

import time
import weakref
from datetime import datetime, timezone
from typing import Any

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from airstream.dagster_consumer import replayed_ids
from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.checks import newest_evaluations, stored_check_time
from airstream.dagster_consumer.consume import ConsumeOutcome, EventIds, Recorder, consume, records_written
from airstream.dagster_consumer.cursor import SensorCursor
from airstream.dagster_consumer.event_log_ids import EventLogIds
from airstream.dagster_consumer.gap_range import GapRange, gap_range
from airstream.dagster_consumer.health import (
    DEFAULT_HEALTH_INTERVAL,
    count_outcome,
    health_observation,
    stamped,
    tick_status_line,
)
from airstream.dagster_consumer.mappings import AssetMappings
from airstream.dagster_consumer.recorded_ids import (
    DEFAULT_DEDUPLICATION_HORIZON,
    Horizon,
    RecordedIds,
    check_horizon,
    stored_check,
)
from airstream.dagster_consumer.rest.records import AirflowRestApi
from airstream.dagster_consumer.sources.base import EventSource, EventSourceUnavailable
from airstream.dagster_consumer.sources.rest import RestEventSource
from airstream.dagster_consumer.stream_handover import sensor_handover
from airstream.dagster_consumer.translate import AssetEvent

DEFAULT_GAP_REPAIR_INTERVAL = 300.0

# Instance name → (recorder, event source) of the sensors built in this process, so
# ``airstream replay`` translates exactly as the sensor of the user's definitions does.
_BUILT: dict[str, tuple[Recorder, EventSource | None]] = {}


def built_sensor_parts(instance_name: str) -> tuple[Recorder, EventSource | None] | None:
    """The recorder (mappings, webserver URL) and event source of the last sensor built for
    ``instance_name`` in this process, or ``None``."""
    return _BUILT.get(instance_name)


def sensor_name(airflow_instance: AirflowInstance) -> str:
    return f"{airflow_instance.name}__airflow_event_sensor"


def _now() -> float:
    """Unix seconds; one place for tests to replace."""
    return time.time()


def build_airflow_event_sensor(
    *,
    airflow_instance: AirflowInstance,
    mappings: AssetMappings,
    minimum_interval_seconds: int = 1,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    rest_api: AirflowRestApi | None = None,
    rest_source: RestEventSource | None = None,
    gap_repair_interval: float | None = DEFAULT_GAP_REPAIR_INTERVAL,
    deduplication_horizon: Horizon = DEFAULT_DEDUPLICATION_HORIZON,
    health_interval: float | None = DEFAULT_HEALTH_INTERVAL,
) -> SensorDefinition:
    """A sensor that reads ``airflow_instance``'s events and records them on assets.

    Each tick reads from the positions in the sensor's cursor, translates the events, and
    returns them with the new positions; Dagster stores both, so a restart resumes exactly.
    Events from another instance name on the same topic are left to that instance's sensor.
    A ``running`` event whose task try or DAG run already ended (per the cursor's window of seen
    event ids) is not recorded, so a finished task never looks unfinished; the tick's log counts
    it as late. A task mapping that names a task a finished DAG run does not list is reported
    once per process, as a warning in the sensor's log.

    Deduplication: the ids of the events recorded whose Airflow time is within
    ``deduplication_horizon`` are kept in the Dagster instance's key-value store
    (:mod:`airstream.dagster_consumer.recorded_ids`; the cursor holds a pointer of a few hundred
    bytes); an event older than the horizon is looked up in Dagster's event log (the
    ``airstream/event_id`` metadata of the asset keys it maps to) before anything is recorded. So a
    redelivery, a spool flushed days later, a REST sweep or a replay never records twice, also when
    a tick dies between storing its asset events and its cursor.

    Health (:mod:`airstream.dagster_consumer.health`): each tick logs the topic lag and running
    totals; a tick that skips bad messages or events of unknown type, finds stored offsets the
    broker no longer has records an observation on
    ``[instance, "airstream_health"]``, and a heartbeat observation with the lag is recorded at
    most every ``health_interval`` seconds. A gap also hands its time range (from the newest event
    recorded on that partition before it to the first one after) to gap repair and makes a sweep due now.

    Args:
        deduplication_horizon: how long (event time) recorded ids are kept in the key-value store,
            a positive ``timedelta`` or seconds, 30 days by default; ``ValueError`` otherwise
            (deduplication cannot be turned off). Older events are checked in the event log.
        health_interval: at most how often, in seconds, a heartbeat observation (lag, totals) is
            recorded on the health asset; ``None`` or ``0``: on incidents only.
        rest_api: the instance's REST client; defaults to ``airflow_instance.rest`` when the
            instance has one. With no event source this makes the sensor poll REST every tick
            (fallback); with one, it runs gap-repair sweeps.
        rest_source: a configured :class:`RestEventSource` instead of ``rest_api`` (overlap,
            lookback, bounds).
        gap_repair_interval: seconds between gap-repair sweeps when both sources exist; ``None``
            or ``0`` disables them. A due sweep waits for a tick that read the topic to its end
            (what is still on the topic is lag, not a gap); a sweep that hit its bound or failed
            runs again on the next tick.
    """
    horizon = check_horizon(deduplication_horizon)
    if health_interval is not None and not (isinstance(health_interval, (int, float)) and health_interval >= 0):
        raise ValueError(f"health_interval must be seconds, 0 or more, or None (got {health_interval!r})")
    heartbeat = float(health_interval or 0)
    name = sensor_name(airflow_instance)
    event_source = _event_source_of(airflow_instance)
    rest = _rest_source_of(airflow_instance, rest_api, rest_source)
    if event_source is None and rest is None:
        raise ValueError(
            f"AirflowInstance {airflow_instance.name!r} has neither an event source nor REST access: "
            "give it event_source=KafkaEventSource(...) or REST access (or pass rest_api=...)"
        )
    interval = float(gap_repair_interval or 0)
    recorder = Recorder(
        instance_name=airflow_instance.name, mappings=mappings, webserver_url=airflow_instance.webserver_url
    )
    _BUILT[airflow_instance.name] = (recorder, event_source)
    sources = " and ".join(
        [source.describe() for source in (event_source,) if source is not None]
        + ([f"gap repair from {rest.describe()} every {interval:g} s"] if event_source and rest and interval else [])
        + ([f"{rest.describe()} (fallback polling)"] if rest is not None and event_source is None else [])
    )

    @sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            f"Records the Airflow instance {airflow_instance.name!r}'s task, DAG-run and asset events "
            f"from {sources} as asset events. Each tick's log says how many events it read and how many "
            "records (materializations, observations, check evaluations) it wrote."
        ),
    )
    def airflow_event_sensor(context: SensorEvaluationContext) -> SensorResult:
        now = _now()
        cursor = SensorCursor.parse(context.cursor)
        ids = RecordedIds(
            context.instance,
            name,
            cursor.ids,
            horizon=horizon,
            now=datetime.fromtimestamp(now, timezone.utc),
            legacy=cursor.legacy_seen,
        )
        lookup = _event_log_ids(context.instance)
        lookup.new_batch()
        _take_replayed(context, airflow_instance.name, cursor, ids)
        handover = sensor_handover(context.instance, airflow_instance.name, cursor, ids, now=now)
        if handover.deferred:  # `airstream stream` records the topic now: nothing from it here
            context.log.info(handover.reason)
            cursor.ids = ids.commit()
            return SensorResult(asset_events=[], cursor=cursor.serialize())
        seen = handover.seen  # this sensor's recorded ids and those of streams that ran

        already_stored = stored_check(ids, lookup, dead_batches=seen.stored_by_dead_batch)

        asset_events: list[AssetEvent] = []
        outcomes: list[ConsumeOutcome] = []
        errors: list[str] = []
        lag: dict[str, int] | None = None
        gap: GapRange | None = None
        topic_caught_up = True
        if event_source is not None:
            outcome = consume(
                event_source, cursor.position, seen=seen, recorder=recorder, already_stored=already_stored
            )
            outcomes.append(outcome)
            cursor.position = outcome.position
            topic_caught_up = outcome.caught_up
            asset_events.extend(outcome.asset_events)
            lag = outcome.lag()
            _log(context, outcome, outcome.summary())
            if outcome.gaps:
                gap = gap_range(outcome.gaps, cursor.times, now=now)
                errors.append(f"{outcome.source}: events lost to the topic: {gap.describe()}")
                context.log.error(f"airstream: {gap.describe()}")
                if rest is not None and interval:
                    _hand_gap_to_rest(context, gap, rest, cursor)
            for partition, newest in outcome.newest_at.items():
                cursor.times[partition] = max(cursor.times.get(partition, 0), int(newest.timestamp()))
        if rest is not None:
            if event_source is None:  # fallback: every tick, failures fail the tick as Kafka's do
                outcome = _rest_step(rest, cursor, recorder, seen, already_stored, now=now)
                outcomes.append(outcome)
                asset_events.extend(outcome.asset_events)
                _log(context, outcome, f"{outcome.read} read from REST; {outcome.summary()}")
            elif interval and topic_caught_up:  # a topic still being read is lag, not a gap
                asset_events.extend(
                    _gap_repair(context, rest, cursor, recorder, interval, outcomes, seen, already_stored, errors)
                )
        cursor.ids = ids.commit()
        for outcome in outcomes:
            count_outcome(cursor, outcome)
            errors.extend(f"{rejected.where}: {rejected.reason}" for rejected in outcome.rejected)
        if errors:
            cursor.error = stamped(now, errors[-1])
        context.log.info(tick_status_line(lag, cursor.totals, cursor.error))
        health = health_observation(
            airflow_instance.name,
            outcomes,
            cursor=cursor,
            lag=lag,
            gap=gap,
            errors=errors,
            now=now,
            heartbeat=heartbeat,
        )
        if health is not None or cursor.health_at is None:
            cursor.health_at = now  # the first tick starts the heartbeat's clock
        if health is not None:
            asset_events.append(health)
        asset_events = newest_evaluations(asset_events, stored_check_time(context.instance))
        context.log.info(f"airstream: this tick wrote {records_written(asset_events)}")
        return SensorResult(asset_events=asset_events, cursor=cursor.serialize())

    return airflow_event_sensor


def _take_replayed(
    context: SensorEvaluationContext, instance_name: str, cursor: SensorCursor, ids: RecordedIds
) -> None:
    """Count the ids ``airstream replay`` handed over since the last tick as recorded; give back
    the space of the entries a committed tick took."""
    taken, cleaned = cursor.replayed
    if cleaned < taken:
        replayed_ids.blank(context.instance, instance_name, cleaned, taken)
    count, replayed = replayed_ids.take(context.instance, instance_name, taken)
    if count > taken:
        new = ids.take_recorded(replayed)
        context.log.info(f"airstream: took {new} new id(s) of events `airstream replay` recorded")
    cursor.replayed = [count, taken]


def _hand_gap_to_rest(
    context: SensorEvaluationContext, gap: GapRange, rest: RestEventSource, cursor: SensorCursor
) -> None:
    """Make a gap-repair sweep due now, reading from the start of the gap's time range."""
    state = dict(cursor.rest or {})
    if gap.since is not None:
        state["position"] = rest.position_covering(state.get("position"), gap.since)
    state.pop("swept_at", None)
    cursor.rest = state
    context.log.error(
        f"airstream: a gap-repair sweep from {rest.describe()} is due now, covering {gap.describe_times()}"
    )


def _gap_repair(
    context: SensorEvaluationContext,
    rest: RestEventSource,
    cursor: SensorCursor,
    recorder: Recorder,
    interval: float,
    outcomes: list[ConsumeOutcome],
    ids: EventIds,
    already_stored: Any,
    errors: list[str],
) -> list[AssetEvent]:
    """A sweep when one is due; a failed sweep is logged and retried next tick, the Kafka part
    of the tick stands."""
    now = _now()
    swept_at = (cursor.rest or {}).get("swept_at")
    if isinstance(swept_at, (int, float)) and now - swept_at < interval:
        return []
    try:
        outcome = _rest_step(rest, cursor, recorder, ids, already_stored, now=now)
    except EventSourceUnavailable as error:
        context.log.error(f"airstream: gap repair from {rest.describe()} failed, retried next tick: {error}")
        cursor.error = stamped(now, f"gap repair from {rest.describe()} failed: {error}")  # not an incident: retried
        return []
    outcomes.append(outcome)
    _log(
        context,
        outcome,
        f"gap repair: {outcome.read} read from REST, {outcome.recorded} gap-repaired; {outcome.summary()}",
    )
    return outcome.asset_events


def _rest_step(
    rest: RestEventSource,
    cursor: SensorCursor,
    recorder: Recorder,
    ids: EventIds,
    already_stored: Any,
    *,
    now: float,
) -> ConsumeOutcome:
    state = cursor.rest or {}
    outcome = consume(rest, state.get("position"), seen=ids, recorder=recorder, already_stored=already_stored)
    swept_at = round(now) if outcome.caught_up else state.get("swept_at")  # not caught up: due again
    cursor.rest = {"position": outcome.position, **({"swept_at": swept_at} if swept_at is not None else {})}
    return outcome


# The event-log lookup of each Dagster instance this process evaluates sensors against, kept
# between ticks (what it read once is not read again).
_LOOKUPS: weakref.WeakKeyDictionary[Any, EventLogIds] = weakref.WeakKeyDictionary()


def _event_log_ids(instance: Any) -> EventLogIds:
    try:
        lookup = _LOOKUPS.get(instance)
        if lookup is None:
            lookup = _LOOKUPS[instance] = EventLogIds(instance)
        return lookup
    except TypeError:  # not weak-referenceable: one per tick
        return EventLogIds(instance)


def _log(context: SensorEvaluationContext, outcome: ConsumeOutcome, line: str) -> None:
    for gap in outcome.gaps:
        context.log.error(f"airstream: {outcome.source}: events lost to the topic: {gap.describe()}")
    for rejected in outcome.rejected:
        context.log.error(f"airstream: skipped the message at {rejected.where}: {rejected.reason}")
    for unknown in outcome.unknown_types:
        context.log.info(f"airstream: skipped the event of unknown type at {unknown.where}: {unknown.reason}")
    for warning in outcome.warnings:
        context.log.warning(warning)
    context.log.info(f"airstream: {outcome.source}: {line}")


def _event_source_of(airflow_instance: AirflowInstance) -> EventSource | None:
    source = getattr(airflow_instance, "event_source", None)
    return source if isinstance(source, EventSource) else None


def _rest_source_of(
    airflow_instance: AirflowInstance, rest_api: AirflowRestApi | None, rest_source: RestEventSource | None
) -> RestEventSource | None:
    if rest_source is not None:
        if rest_api is not None:
            raise ValueError("build_airflow_event_sensor: pass rest_api or rest_source, not both")
        return rest_source
    api: Any = rest_api if rest_api is not None else getattr(airflow_instance, "rest", None)
    return RestEventSource(api, airflow_instance.name) if api is not None else None
