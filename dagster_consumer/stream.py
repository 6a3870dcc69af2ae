"""``airstream stream``: record events into the Dagster instance as they arrive.

A long-running driver of the one consume step (:func:`airstream.dagster_consumer.consume.consume`)
with the sensor's translation and guarantees, without waiting for the sensor daemon's next tick
(Dagster ticks a sensor at most every 5 s)::

    airstream stream --instance prod -m my_project.definitions
    airstream stream --instance prod -m my_project.definitions --partitions 0,1   # a static split

It keeps one connection to the broker open and, for each batch read: writes the batch's new ids
(:class:`~airstream.dagster_consumer.recorded_ids.RecordedIds`, in its own namespace), stores the
asset events (:func:`~airstream.dagster_consumer.batch_store.store_asset_events`, a few
transactions per batch), then stores its state (a :class:`~airstream.dagster_consumer.cursor.SensorCursor`)
in Dagster's key-value store, in the sensor's order, so a ``kill -9`` anywhere neither loses nor
repeats a record: the next start finds the batch that died after storing and counts what it
stored. It holds a lease (:mod:`airstream.dagster_consumer.stream_lease`) while it records; the
sensor records nothing from the topic meanwhile and resumes from the stream's position when it
stops (:mod:`airstream.dagster_consumer.stream_handover`). A second process started for the same
split waits as a hot standby and takes over once the lease expires. SIGTERM or SIGINT: the batch
in hand is finished and stored, the lease released, and the process exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from airstream.dagster_consumer import replayed_ids
from airstream.dagster_consumer.batch_store import store_asset_events
from airstream.dagster_consumer.checks import newest_evaluations, stored_check_time
from airstream.dagster_consumer.consume import ConsumeOutcome, Recorder, consume
from airstream.dagster_consumer.cursor import InvalidCursor, SensorCursor
from airstream.dagster_consumer.dagster_kvs import read_values, write_values
from airstream.dagster_consumer.event_log_ids import EventLogIds
from airstream.dagster_consumer.health import (
    DEFAULT_HEALTH_INTERVAL,
    count_outcome,
    health_observation,
    stamped,
    tick_status_line,
)
from airstream.dagster_consumer.recorded_ids import DEFAULT_DEDUPLICATION_HORIZON, RecordedIds, stored_check
from airstream.dagster_consumer.sources.base import EventSourceUnavailable
from airstream.dagster_consumer.sources.kafka import KafkaEventSource
from airstream.dagster_consumer.stream_handover import (
    LayeredIds,
    merged_position,
    sensor_committed_cursor,
    stream_peers,
    wait_for_sensor_tick,
)
from airstream.dagster_consumer.stream_lease import (
    DEFAULT_LEASE_SECONDS,
    Lease,
    cursor_key,
    ids_namespace,
    parse_partitions,
    split_name,
)
from airstream.dagster_consumer.translate import AssetEvent

DEFAULT_POLL_INTERVAL = 0.5
DEFAULT_STATUS_INTERVAL = 10.0
# A sensor tick reads for at most max_seconds_per_tick (10 s by default), then the daemon stores
# what it read; a tick still "started" after this long belongs to a daemon that died.
DEFAULT_SENSOR_TICK_TIMEOUT = 120.0
# After taking the topic over from the sensor or another split, the first batches also ask
# Dagster's event log about each event (what a tick that could not be waited for may have stored).
CHECKED_BATCHES = 3
# Asset events stored (in one transaction per database, batch_store) between two looks at the lease.
STORE_CHUNK = 500


class StreamError(RuntimeError):
    """The stream cannot run as asked; the message says what to change."""


@dataclass
class StreamOptions:
    """How the stream runs: ``poll_interval`` (seconds a read waits for a first message), the lease
    period, how often a status line is printed, how long to wait for a sensor tick in flight."""

    poll_interval: float = DEFAULT_POLL_INTERVAL
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    status_interval: float = DEFAULT_STATUS_INTERVAL
    sensor_tick_timeout: float = DEFAULT_SENSOR_TICK_TIMEOUT
    health_interval: float = DEFAULT_HEALTH_INTERVAL


@dataclass
class StreamSummary:
    """What a stream process did: events recorded, records written, batches stored."""

    recorded: int = 0
    records: int = 0
    batches: int = 0
    duplicates: int = 0

    def line(self) -> str:
        return (
            f"{self.recorded} event(s) recorded as {self.records} record(s) in {self.batches} batch(es), "
            f"{self.duplicates} duplicate(s)"
        )


class _Stream:
    """One stream process on one split: standby, active, standby again if the lease is lost."""

    def __init__(
        self,
        instance: Any,
        source: KafkaEventSource,
        recorder: Recorder,
        sensor_name: str,
        options: StreamOptions,
        out: TextIO,
        stop_requested: Callable[[], bool],
    ) -> None:
        self.instance = instance
        self.source = source
        self.recorder = recorder
        self.sensor_name = sensor_name
        self.options = options
        self.out = out
        self.stop_requested = stop_requested
        self.split = split_name(source.partitions)
        self.name = f"airstream stream {recorder.instance_name}[{self.split or 'all'}]"
        self.lease = Lease(instance, recorder.instance_name, self.split, seconds=options.lease_seconds)
        self.summary = StreamSummary()
        self.key = cursor_key(recorder.instance_name, self.split)
        self.namespace = ids_namespace(recorder.instance_name, self.split)

    def say(self, text: str) -> None:
        print(f"{self.name}: {text}", file=self.out, flush=True)

    def run(self) -> StreamSummary:
        try:
            while not self.stop_requested():
                if not self._stand_by():
                    break
                self._active()
        finally:
            self.lease.release()
            self.say(f"stopped; {self.summary.line()}")
        return self.summary

    def _stand_by(self) -> bool:
        """Wait for the lease; False when asked to stop first."""
        told = None
        while not self.stop_requested():
            blocker = self.lease.blocker()
            if blocker is None and self.lease.try_take():
                self.say(f"active as {self.lease.owner} (lease {self.lease.seconds:g} s)")
                return True
            if blocker is not None and blocker.owner != told:
                self.say(
                    f"standby: {blocker.describe(time.time())} records these partitions; taking over when it stops"
                )
                told = blocker.owner
            self._sleep(min(1.0, self.lease.seconds / 5))
        return False

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not self.stop_requested() and time.monotonic() < deadline:
            time.sleep(min(0.1, seconds))

    def _active(self) -> None:
        finished = wait_for_sensor_tick(
            self.instance,
            self.sensor_name,
            timeout=self.options.sensor_tick_timeout,
            stop_requested=self.stop_requested,
            say=self.say,
        )
        if not finished and self.stop_requested():
            return
        raw = read_values(self.instance, [self.key]).get(self.key)
        try:
            state = SensorCursor.parse(raw)
        except InvalidCursor as error:
            raise StreamError(
                f"the stream state {self.key} in the Dagster instance is unreadable ({error}); delete that key to "
                "start this split again from the sensor's position"
            ) from None
        now = time.time()
        positions, peers = stream_peers(
            self.instance,
            self.recorder.instance_name,
            self.split,
            sensor_committed_cursor(self.instance, self.sensor_name),
            self.sensor_name,
            now=now,
        )
        start = merged_position(state.position, positions, self.source.partitions)
        checked = CHECKED_BATCHES if start != state.position or raw is None or not finished else 0
        state.position = start
        self.say(f"reading {self.source.describe()} from {_describe_position(start)}")
        lookup = EventLogIds(self.instance)
        last_status = time.monotonic()
        written_since = 0
        with self.source.session(max_wait=self.options.poll_interval):
            while not self.stop_requested():
                if not self.lease.renew():
                    self.say("lost the lease to another process; standing by")
                    return
                outcome, asset_events = self._batch(state, peers, lookup, checked)
                if outcome is None:
                    self._sleep(min(5.0, self.options.poll_interval * 4))  # the broker is away: try again soon
                    continue
                if asset_events is None:
                    return  # the lease was lost before storing: the batch is left to its holder
                if outcome.read:
                    checked = max(0, checked - 1)
                written_since += len(asset_events)
                if time.monotonic() - last_status >= self.options.status_interval:
                    last_status = time.monotonic()
                    self._status(state, outcome, written_since)
                    written_since = 0

    def _batch(
        self, state: SensorCursor, peers: list[RecordedIds], lookup: EventLogIds, checked: int
    ) -> tuple[ConsumeOutcome | None, list[AssetEvent] | None]:
        """Read, record and store one batch; ``(None, None)`` when the broker could not be read,
        ``(outcome, None)`` when the lease was lost before storing."""
        now = time.time()
        ids = RecordedIds(
            self.instance,
            self.namespace,
            state.ids,
            horizon=DEFAULT_DEDUPLICATION_HORIZON,
            now=datetime.fromtimestamp(now, timezone.utc),
        )
        taken_before = state.replayed[0]
        count, replayed = replayed_ids.take(self.instance, self.recorder.instance_name, taken_before)
        if count > taken_before:  # `airstream replay` recorded these: never record them again
            ids.take_recorded(replayed)
            state.replayed = [count, count]
        seen = LayeredIds(ids, peers)

        already_stored = stored_check(ids, lookup, dead_batches=seen.stored_by_dead_batch, check_every=bool(checked))

        try:
            outcome = consume(
                self.source, state.position, seen=seen, recorder=self.recorder, already_stored=already_stored
            )
        except EventSourceUnavailable as error:
            self.say(f"cannot read the topic, trying again: {error}")
            state.error = stamped(now, str(error))
            return None, None
        for warning in outcome.warnings:
            self.say(warning)
        for rejected in outcome.rejected:
            self.say(f"skipped the message at {rejected.where}: {rejected.reason}")
        for gap in outcome.gaps:
            self.say(f"events lost to the topic: {gap.describe()}")
        changed = outcome.position != state.position or ids.new_ids > 0 or count > taken_before
        count_outcome(state, outcome)
        errors = [f"{rejected.where}: {rejected.reason}" for rejected in outcome.rejected]
        errors += [f"{outcome.source}: events lost to the topic: {gap.describe()}" for gap in outcome.gaps]
        if errors:
            state.error = stamped(now, errors[-1])
        health = health_observation(
            self.recorder.instance_name,
            [outcome],
            cursor=state,
            lag=outcome.lag(),
            errors=errors,
            now=now,
            heartbeat=self.options.health_interval,
        )
        if health is not None or state.health_at is None:
            state.health_at = now
            changed = True
        if not changed:
            return outcome, []
        asset_events: list[AssetEvent] = list(outcome.asset_events) + ([health] if health is not None else [])
        if asset_events and not self.lease.held():
            self.say("lost the lease to another process before storing a batch; standing by")
            return outcome, None
        state.ids = ids.commit()  # first the ids, then the asset events, then the state: as a sensor tick
        asset_events = newest_evaluations(asset_events, stored_check_time(self.instance))
        for start in range(0, len(asset_events), STORE_CHUNK):
            # A long batch keeps its lease; one that lost it stops storing: its new holder finds
            # the part stored here as a dead batch's.
            if start and not self.lease.renew():
                self.say("lost the lease to another process while storing a batch; standing by")
                return outcome, None
            store_asset_events(self.instance, asset_events[start : start + STORE_CHUNK])
        lookup.new_batch()
        state.position = outcome.position
        for partition, newest in outcome.newest_at.items():
            state.times[partition] = max(state.times.get(partition, 0), int(newest.timestamp()))
        write_values(self.instance, {self.key: state.serialize()})
        self.summary.recorded += outcome.recorded
        self.summary.duplicates += outcome.duplicates
        self.summary.records += len(asset_events)
        self.summary.batches += 1 if asset_events else 0
        return outcome, asset_events

    def _status(self, state: SensorCursor, outcome: ConsumeOutcome, written: int) -> None:
        line = tick_status_line(outcome.lag(), state.totals, state.error).removeprefix("airstream: ")
        self.say(f"{written} record(s) written in the last {self.options.status_interval:g} s; {line}")


def run_stream(
    *,
    dagster_instance: Any,
    source: KafkaEventSource,
    recorder: Recorder,
    sensor_name: str,
    options: StreamOptions | None = None,
    out: TextIO | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
) -> StreamSummary:
    """Record ``source``'s events into ``dagster_instance`` until ``stop_requested()``; see the
    module's description. ``sensor_name`` is the sensor of the same Airflow instance (its cursor
    is where a first stream starts; it defers to the stream while the stream runs)."""
    stream = _Stream(
        dagster_instance, source, recorder, sensor_name, options or StreamOptions(), out or sys.stdout, stop_requested
    )
    return stream.run()


def _describe_position(position: Any) -> str:
    offsets = {key: value for key, value in (position or {}).items() if key != "topic_id"}
    if not offsets:
        return "the beginning"
    return "offsets " + ", ".join(f"{partition}: {offset}" for partition, offset in offsets.items())


def add_stream_parser(commands: Any) -> None:
    from airstream.dagster_consumer.cli import definitions_options

    parser = commands.add_parser(
        "stream",
        help="record events into the Dagster instance as they arrive (a long-running consumer)",
        description=(__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("--instance", required=True, metavar="NAME", help="the Airflow instance whose events to record")
    definitions_options(parser, required=True)
    parser.add_argument(
        "--partitions", metavar="LIST", help="read only these partitions of the topic, e.g. 0,1 (a static split)"
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        default=DEFAULT_POLL_INTERVAL,
        metavar="S",
        help=f"seconds a read waits for a first message ({DEFAULT_POLL_INTERVAL:g}); also how soon a stop is seen",
    )
    parser.add_argument("--dagster-home", help="the Dagster instance's folder; default: $DAGSTER_HOME")
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=DEFAULT_LEASE_SECONDS,
        metavar="S",
        help=f"how long a stopped process keeps its split before a standby or the sensor takes over "
        f"({DEFAULT_LEASE_SECONDS:g})",
    )
    parser.add_argument(
        "--status-interval",
        type=float,
        default=DEFAULT_STATUS_INTERVAL,
        metavar="S",
        help=f"seconds between status lines ({DEFAULT_STATUS_INTERVAL:g})",
    )


def stream_command(args: argparse.Namespace) -> int:
    try:
        return _stream_command(args)
    except StreamError as error:
        print(f"airstream stream: {error}", file=sys.stderr)
        return 2


def _stream_command(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from airstream.dagster_consumer.cli import load_user_definitions
    from airstream.dagster_consumer.peering import loader
    from airstream.dagster_consumer.sensor import built_sensor_parts

    try:
        partitions = parse_partitions(args.partitions) if args.partitions is not None else None
    except ValueError as error:
        raise StreamError(str(error)) from None
    if args.poll_interval <= 0 or args.lease_seconds <= 1 or args.status_interval <= 0:
        raise StreamError("--poll-interval and --status-interval must be positive, --lease-seconds more than 1")
    if args.poll_interval * 3 > args.lease_seconds:
        raise StreamError(
            f"--poll-interval {args.poll_interval:g} is too long for --lease-seconds {args.lease_seconds:g}: "
            "the lease is renewed between reads; keep the poll interval under a third of the lease"
        )
    if args.dagster_home:
        home = Path(args.dagster_home).resolve()
        if not home.is_dir():
            raise StreamError(f"--dagster-home {args.dagster_home} is not a folder")
        os.environ["DAGSTER_HOME"] = str(home)
    if not os.environ.get("DAGSTER_HOME"):
        raise StreamError("no Dagster instance: set DAGSTER_HOME to your deployment's, or pass --dagster-home")
    try:
        dagster_instance = DagsterInstance.get()
    except Exception as error:
        raise StreamError(f"no Dagster instance at {os.environ['DAGSTER_HOME']} ({error})") from None
    with dagster_instance, loader.first_fetch_suppressed():
        load_user_definitions(args.module, args.file)
        parts = built_sensor_parts(args.instance)
        if parts is None:
            raise StreamError(
                f"the definitions build no airstream sensor for the Airflow instance {args.instance!r}; "
                "check --instance"
            )
        recorder, defined = parts
        if not isinstance(defined, KafkaEventSource):
            raise StreamError(
                f"the Airflow instance {args.instance!r} has no Kafka event source in the definitions; "
                "`airstream stream` reads the topic (give the AirflowInstance event_source=KafkaEventSource(...))"
            )
        try:
            source = KafkaEventSource(
                bootstrap_servers=",".join(defined.bootstrap_servers),
                topic=defined.topic,
                max_events_per_tick=defined.max_events_per_tick,
                max_seconds_per_tick=defined.max_seconds_per_tick,
                connect_timeout_seconds=defined.connect_timeout_seconds,
                client_options=defined.client_options,
                dead_letter_topic=defined.dead_letter_topic,
                partitions=partitions,
            )
        except ValueError as error:
            raise StreamError(str(error)) from None
        options = StreamOptions(
            poll_interval=args.poll_interval, lease_seconds=args.lease_seconds, status_interval=args.status_interval
        )
        with _StopOnSignal() as stop:
            run_stream(
                dagster_instance=dagster_instance,
                source=source,
                recorder=recorder,
                sensor_name=f"{args.instance}__airflow_event_sensor",
                options=options,
                stop_requested=stop,
            )
    return 0


class _StopOnSignal:
    """SIGTERM or SIGINT asks the stream to stop after the batch in hand; a second one stops now."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"airstream stream: {signal.Signals(signum).name}: stopping after this batch", file=sys.stderr, flush=True
        )

    def __enter__(self) -> _StopOnSignal:
        for signum in self.SIGNALS:
            with contextlib.suppress(ValueError):  # not the main thread: no handler
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


__all__: Sequence[str] = ["StreamError", "StreamOptions", "StreamSummary", "run_stream"]
