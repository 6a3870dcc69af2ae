"""``airstream replay``: backfill a Dagster instance from the topic, through the sensor's consume step.

A bounded run of the one consume step (:func:`airstream.dagster_consumer.consume.consume`) with
the sensor's translation: it reads the topic from the beginning (or from ``--since``, found with
Kafka's ``offsets_for_times``) up to the high watermarks it sees at its start, stores the asset
events as runless events (as Dagster's daemon stores a sensor's) a batch at a time
(:mod:`airstream.dagster_consumer.batch_store`), and keeps its position and the ids of every
event it recorded in a small state file, written atomically after each stored batch. Ctrl-C
finishes the batch in hand, saves and stops; a rerun continues where it stopped; ``--restart``
starts over::

    airstream replay --instance prod -m my_project.definitions
    airstream replay --instance prod --bootstrap-servers broker:9092 --topic airflow.events \\
        --since 2026-11-01T00:00:00Z --until 2026-11-08 --dag etl --dag reports

An event is recorded once, whatever is replayed again and whoever recorded it first: an event
not in the state file's ids is looked up in Dagster's event log (the ``airstream/event_id``
metadata of the asset keys it maps to) before it is recorded, so a second replay (another state
file, ``--restart``) or a replay over what the sensor recorded adds nothing. The replay then hands
the ids of each stored batch to the sensor of the same instance
(:mod:`airstream.dagster_consumer.replayed_ids`), so the sensor does not record them again
either. Run one replay at a time per Airflow instance.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from airstream.dagster_consumer import replayed_ids
from airstream.dagster_consumer.batch_store import store_asset_events
from airstream.dagster_consumer.checks import newest_evaluations, stored_check_time
from airstream.dagster_consumer.consume import ConsumeOutcome, Recorder, consume
from airstream.dagster_consumer.cursor import SeenEvents
from airstream.dagster_consumer.event_log_ids import EventLogIds
from airstream.dagster_consumer.mappings import AssetMappings
from airstream.dagster_consumer.recorded_ids import digest, hour_of
from airstream.dagster_consumer.sources.base import EventBatch, EventSource, EventSourceUnavailable, Position
from airstream.dagster_consumer.sources.kafka import KafkaEventSource, partition_offsets
from airstream.dagster_consumer.translate import AssetEvent
from airstream.schemas import Event

STATE_VERSION = 1
DEFAULT_BATCH = 2000
_UNBOUNDED = sys.maxsize  # the replay remembers every id it recorded
# Record timestamps are set when the listener sends, never before the event's time; this slack
# covers clocks of different hosts when --since is turned into offsets.
_SINCE_SLACK = timedelta(minutes=10)


class ReplayError(RuntimeError):
    """The replay cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Selection:
    """Which events a replay records: DAG ids (empty: all) and a window on the event's time
    (its end date when it has one, else when it was emitted)."""

    dag_ids: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    def keeps(self, event: Event) -> bool:
        if self.dag_ids and event.dag_id not in self.dag_ids:
            return False
        when = event_time(event)
        if self.since is not None and when < self.since:
            return False
        return self.until is None or when <= self.until

    def describe(self) -> dict[str, Any]:
        return {
            "dags": sorted(self.dag_ids),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
        }


def event_time(event: Event) -> datetime:
    when = event.end_date or event.emitted_at
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 time (``2026-11-01``, ``2026-11-01T12:00:00Z``, ``...+02:00``); naive is UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"{option} {text!r} is not an ISO 8601 time; write e.g. 2026-11-01 or 2026-11-01T12:00:00Z"
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=timezone.utc)


@dataclass
class ReplayState:
    """What a replay keeps between runs: the topic position, the ids it recorded, its counts."""

    instance: str
    topic: str
    selection: dict[str, Any]
    position: Position | None = None
    seen: SeenEvents = field(default_factory=lambda: SeenEvents(window=_UNBOUNDED))
    counts: dict[str, int] = field(default_factory=dict)
    finished: bool = False

    @classmethod
    def load(cls, path: Path) -> ReplayState | None:
        if not path.exists():
            return None
        try:
            document = json.loads(path.read_text())
            if document.get("version") != STATE_VERSION:
                raise ValueError(f"version {document.get('version')!r}, expected {STATE_VERSION}")
            return cls(
                instance=str(document["instance"]),
                topic=str(document["topic"]),
                selection=dict(document["selection"]),
                position=document["position"],
                seen=SeenEvents.decode(document["seen"], _UNBOUNDED),
                counts={str(k): int(v) for k, v in document.get("counts", {}).items()},
                finished=bool(document.get("finished", False)),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ReplayError(
                f"the replay state {path} is unreadable ({error}); pass --restart to start over"
            ) from None

    def save(self, path: Path) -> None:
        """Write the state atomically (a temporary file, fsync, rename, fsync of the folder)."""
        document = {
            "version": STATE_VERSION,
            "instance": self.instance,
            "topic": self.topic,
            "selection": self.selection,
            "position": self.position,
            "counts": self.counts,
            "finished": self.finished,
            "seen": self.seen.encode(),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(document, handle, separators=(",", ":"))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class _Handed:
    """The state's ids, noting each id added (with its event hour) to hand it to the sensor."""

    def __init__(self, seen: SeenEvents) -> None:
        self.seen = seen
        self.added: dict[int, int] = {}

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.seen

    def add(self, event_id: str, when: datetime | None = None) -> bool:
        if not self.seen.add(event_id):
            return False
        self.added[digest(event_id)] = hour_of(when or datetime.now(timezone.utc))
        return True


class _SelectedSource(EventSource):
    """The topic as the replay sees it: events outside the selection are dropped (and counted)
    before the consume step, which does everything else as it does for the sensor."""

    def __init__(self, source: EventSource, selection: Selection) -> None:
        self.source = source
        self.selection = selection
        self.not_selected = 0

    def describe(self) -> str:
        return self.source.describe()

    def read(self, position: Position | None) -> EventBatch:
        batch = self.source.read(position)
        kept = [event for event in batch.events if self.selection.keeps(event)]
        self.not_selected = len(batch.events) - len(kept)
        return replace(batch, events=kept)


@dataclass
class ReplaySummary:
    read: int = 0
    recorded: int = 0
    asset_events: int = 0
    duplicates: int = 0
    skipped: int = 0
    poison: int = 0
    seconds: float = 0.0
    interrupted: bool = False

    def line(self) -> str:
        rate = self.read / self.seconds if self.seconds > 0 else 0.0
        return (
            f"airstream replay: {self.read} read, {self.recorded} recorded ({self.asset_events} asset events), "
            f"{self.duplicates} duplicates, {self.skipped} skipped, {self.poison} poison; "
            f"{self.seconds:.1f} s, {rate:,.0f} events/s"
        )


class _Progress:
    """A progress bar redrawn in place (``\\r``) on a terminal; a plain line a second otherwise."""

    WIDTH = 30

    def __init__(self, total: int, out: TextIO) -> None:
        self.total, self.out, self.done = total, out, 0
        self.started = self.last_line = time.monotonic()
        self.printed: tuple[int, int] | None = None
        self.terminal = out.isatty()

    def update(self, read: int, recorded: int, *, final: bool = False) -> None:
        self.done += read
        now = time.monotonic()
        share = min(1.0, self.done / self.total) if self.total else 1.0
        if self.terminal:
            filled = int(share * self.WIDTH)
            rate = self.done / max(now - self.started, 1e-9)
            bar = "#" * filled + "-" * (self.WIDTH - filled)
            self.out.write(f"\r[{bar}] {share:4.0%} {self.done}/{self.total} read, {recorded} recorded, {rate:,.0f}/s")
            self.out.flush()
            return
        if (final and self.printed != (self.done, recorded)) or now - self.last_line >= 1.0:
            self.last_line, self.printed = now, (self.done, recorded)
            print(f"airstream replay: {self.done}/{self.total} read ({share:.0%}), {recorded} recorded", file=self.out)
            self.out.flush()

    def close(self) -> None:
        if self.terminal:
            self.out.write("\n")
            self.out.flush()


def default_state_path(dagster_home: Path, instance: str, topic: str) -> Path:
    return dagster_home / "airstream-replay" / f"{instance}-{topic}.json"


def replay(
    *,
    dagster_instance: Any,
    source: KafkaEventSource,
    recorder: Recorder,
    state_path: Path,
    selection: Selection = Selection(),
    restart: bool = False,
    max_events: int | None = None,
    batch_size: int = DEFAULT_BATCH,
    out: TextIO | None = None,
    stop_requested: Callable[[], bool] = lambda: False,
) -> ReplaySummary:
    """Replay ``source`` into ``dagster_instance`` up to the high watermarks seen at the start."""
    started = time.monotonic()
    state = None if restart else ReplayState.load(state_path)
    if state is not None and (state.selection != selection.describe() or state.instance != recorder.instance_name):
        raise ReplayError(
            f"the replay state {state_path} is for {state.instance!r} with {state.selection}, not "
            f"{recorder.instance_name!r} with {selection.describe()}; pass --restart to start over with this "
            "selection, or --state-file for a separate replay"
        )
    fresh = state is None
    if state is None:
        state = ReplayState(instance=recorder.instance_name, topic=source.topic, selection=selection.describe())
    starts, ends = _offsets_at_start(source, state.position, selection.since if fresh else None)
    if fresh:
        state.position = {str(partition): offset for partition, offset in sorted(starts.items())}
    total = sum(max(0, ends[p] - starts.get(p, 0)) for p in ends)
    summary = ReplaySummary()
    progress = _Progress(total, out or sys.stdout)
    selected = _SelectedSource(source, selection)
    lookup = EventLogIds(dagster_instance)

    def already_stored(event: Event, translated: list[AssetEvent]) -> set[Any]:
        return lookup.keys_holding(event.event_id, {asset_event.asset_key for asset_event in translated})

    try:
        while not _reached(state.position, ends) and not stop_requested():
            if max_events is not None:
                if summary.read >= max_events:
                    summary.interrupted = True
                    break
                source.max_events_per_tick = max(1, min(batch_size, max_events - summary.read))
            handed = _Handed(state.seen)
            outcome = consume(selected, state.position, seen=handed, recorder=recorder, already_stored=already_stored)
            store_asset_events(
                dagster_instance, newest_evaluations(outcome.asset_events, stored_check_time(dagster_instance))
            )
            lookup.new_batch()
            replayed_ids.publish(dagster_instance, recorder.instance_name, handed.added)
            state.position = outcome.position
            _count(summary, outcome, selected.not_selected)
            _add_counts(state.counts, outcome, selected.not_selected)
            state.save(state_path)
            progress.update(_messages(outcome, selected.not_selected), summary.recorded)
            for rejected in outcome.rejected:
                print(f"airstream replay: skipped the message at {rejected.where}: {rejected.reason}", file=sys.stderr)
            for gap in outcome.gaps:
                print(f"airstream replay: events lost to the topic: {gap.describe()}", file=sys.stderr)
            if outcome.caught_up:
                break
        else:
            summary.interrupted = stop_requested() and not _reached(state.position, ends)
        if not summary.interrupted:
            state.finished = True
            state.save(state_path)
    finally:
        summary.seconds = time.monotonic() - started
        progress.update(0, summary.recorded, final=True)
        progress.close()
    return summary


def _messages(outcome: ConsumeOutcome, not_selected: int) -> int:
    """Messages read from the topic: events kept and not selected, poison, unknown types."""
    return outcome.read + not_selected + len(outcome.rejected) + len(outcome.unknown_types)


def _count(summary: ReplaySummary, outcome: ConsumeOutcome, not_selected: int) -> None:
    summary.read += _messages(outcome, not_selected)
    summary.recorded += outcome.recorded
    summary.asset_events += len(outcome.asset_events)
    summary.duplicates += outcome.duplicates
    summary.poison += len(outcome.rejected)
    summary.skipped += not_selected + outcome.foreign + outcome.late + outcome.superseded + len(outcome.unknown_types)


def _add_counts(counts: dict[str, int], outcome: ConsumeOutcome, not_selected: int) -> None:
    for key, value in (
        ("read", _messages(outcome, not_selected)),
        ("recorded", outcome.recorded),
        ("duplicates", outcome.duplicates),
        ("poison", len(outcome.rejected)),
        ("skipped", not_selected + outcome.foreign + outcome.late + outcome.superseded + len(outcome.unknown_types)),
    ):
        counts[key] = counts.get(key, 0) + value


def _reached(position: Position | None, ends: dict[int, int]) -> bool:
    offsets = partition_offsets(position)
    return all(offsets.get(partition, 0) >= end for partition, end in ends.items())


def _offsets_at_start(
    source: KafkaEventSource, position: Position | None, since: datetime | None, timeout: float = 15.0
) -> tuple[dict[int, int], dict[int, int]]:
    """Where each partition starts (the stored position; else ``since`` through offsets_for_times;
    else the beginning) and the high watermark a fetch reports (``end_offsets`` is wrong on some
    Kafka-protocol brokers)."""
    from kafka import TopicPartition

    consumer = source._connect()
    try:
        partitions = consumer.partitions_for_topic(source.topic)
        if not partitions:
            raise EventSourceUnavailable(f"the topic {source.topic!r} does not exist on {source.describe()}")
        assigned = [TopicPartition(source.topic, partition) for partition in sorted(partitions)]
        consumer.assign(assigned)
        begins = {tp.partition: int(offset) for tp, offset in consumer.beginning_offsets(assigned).items()}
        stored = partition_offsets(position)
        starts = {p: max(stored.get(p, begins[p]), begins[p]) for p in begins}
        for tp in assigned:
            consumer.seek(tp, begins[tp.partition])
        ends: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        while len(ends) < len(assigned):
            if time.monotonic() > deadline:
                raise EventSourceUnavailable(
                    f"{source.describe()}: no fetch answered for every partition within {timeout} s"
                )
            consumer.poll(timeout_ms=200, max_records=1)
            for tp in assigned:
                highwater = consumer.highwater(tp)
                if highwater is not None:
                    ends[tp.partition] = int(highwater)
        if since is not None and position is None:
            ms = int((since - _SINCE_SLACK).timestamp() * 1000)
            try:
                found = consumer.offsets_for_times(dict.fromkeys(assigned, ms))
            except Exception as error:  # a broker without the API: read from the beginning, select by time
                print(
                    f"airstream replay: offsets_for_times failed ({error}); reading from the beginning",
                    file=sys.stderr,
                )
            else:
                for tp, hit in found.items():
                    # No record at or after the time: Kafka answers None, Tansu offset 0 with timestamp -1.
                    none = hit is None or hit.offset < 0 or hit.timestamp < 0
                    starts[tp.partition] = ends[tp.partition] if none else max(begins[tp.partition], int(hit.offset))
        return starts, ends
    except EventSourceUnavailable:
        raise
    except Exception as error:
        raise EventSourceUnavailable(f"reading {source.describe()} failed: {error}") from error
    finally:
        consumer.close()


def add_replay_parser(commands: Any) -> None:
    from airstream.dagster_consumer.cli import definitions_options

    parser = commands.add_parser(
        "replay",
        help="backfill a Dagster instance from the topic, through the sensor's consume step",
        description=(__doc__ or "").split("\n\n")[0],
    )
    parser.add_argument("--instance", required=True, metavar="NAME", help="the Airflow instance whose events to record")
    parser.add_argument("--bootstrap-servers", help="host:port[,host:port]; default: the instance's event source")
    parser.add_argument("--topic", help="the topic; default: the instance's event source's, else airflow.events")
    parser.add_argument("--since", help="only events that ended (or were emitted) at or after this ISO 8601 time")
    parser.add_argument("--until", help="only events that ended (or were emitted) at or before this ISO 8601 time")
    parser.add_argument("--dag", action="append", dest="dags", metavar="DAG_ID", help="only this DAG (repeatable)")
    definitions_options(parser, required=False)
    parser.add_argument("--dagster-home", help="the Dagster instance's folder; default: $DAGSTER_HOME")
    parser.add_argument("--state-file", help="default: $DAGSTER_HOME/airstream-replay/<instance>-<topic>.json")
    parser.add_argument("--restart", action="store_true", help="forget the saved state and start over")
    parser.add_argument("--max-events", type=int, help="stop (resumably) after about this many messages")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"messages per batch ({DEFAULT_BATCH})")
    parser.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to reach the broker (10)")


def replay_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        return _replay_command(args)
    except ReplayError as error:
        print(f"airstream replay: {error}", file=sys.stderr)
        return 2
    except EventSourceUnavailable as error:
        print(f"airstream replay: {error}", file=sys.stderr)
        return 1


def _replay_command(args: argparse.Namespace) -> int:
    from dagster import DagsterInstance

    from airstream.dagster_consumer.cli import load_user_definitions
    from airstream.dagster_consumer.peering import loader
    from airstream.dagster_consumer.sensor import built_sensor_parts

    selection = Selection(
        dag_ids=frozenset(args.dags or ()),
        since=parse_time(args.since, "--since") if args.since else None,
        until=parse_time(args.until, "--until") if args.until else None,
    )
    if selection.since and selection.until and selection.since > selection.until:
        raise ReplayError(f"--since {args.since} is after --until {args.until}")
    if (args.max_events is not None and args.max_events < 1) or args.batch_size < 1:
        raise ReplayError("--max-events and --batch-size must be at least 1")
    if args.dagster_home:
        home = Path(args.dagster_home).resolve()
        if not home.is_dir():
            raise ReplayError(f"--dagster-home {args.dagster_home} is not a folder")
        os.environ["DAGSTER_HOME"] = str(home)
    if not os.environ.get("DAGSTER_HOME"):
        raise ReplayError("no Dagster instance: set DAGSTER_HOME to your deployment's, or pass --dagster-home")
    home = Path(os.environ["DAGSTER_HOME"])
    try:
        dagster_instance = DagsterInstance.get()
    except Exception as error:
        raise ReplayError(f"no Dagster instance at {home} ({error})") from None
    with dagster_instance, loader.first_fetch_suppressed():
        recorder = Recorder(instance_name=args.instance, mappings=AssetMappings())
        defined_source: EventSource | None = None
        if args.module or args.file:
            load_user_definitions(args.module, args.file)
            parts = built_sensor_parts(args.instance)
            if parts is None:
                raise ReplayError(
                    f"the definitions build no airstream sensor for the Airflow instance {args.instance!r}; "
                    "check --instance"
                )
            recorder, defined_source = parts
        source = _source(args, defined_source)
        state_path = Path(args.state_file) if args.state_file else default_state_path(home, args.instance, source.topic)
        stop = _StopOnInterrupt()
        with stop:
            summary = replay(
                dagster_instance=dagster_instance,
                source=source,
                recorder=recorder,
                state_path=state_path,
                selection=selection,
                restart=args.restart,
                max_events=args.max_events,
                batch_size=args.batch_size,
                stop_requested=stop,
            )
    print(summary.line())
    if summary.interrupted:
        print(f"airstream replay: stopped; run the same command again to continue ({state_path})")
        return 130 if stop() else 0
    return 0


def _source(args: argparse.Namespace, defined: EventSource | None) -> KafkaEventSource:
    base = defined if isinstance(defined, KafkaEventSource) else None
    servers = args.bootstrap_servers or (",".join(base.bootstrap_servers) if base else None)
    if not servers:
        raise ReplayError("--bootstrap-servers is required (the definitions give no Kafka event source for it)")
    topic = args.topic or (base.topic if base else "airflow.events")
    try:
        return KafkaEventSource(
            bootstrap_servers=servers,
            topic=topic,
            max_events_per_tick=args.batch_size,
            max_seconds_per_tick=30.0,
            connect_timeout_seconds=args.connect_timeout,
            client_options=base.client_options if base else None,
        )
    except ValueError as error:
        raise ReplayError(str(error)) from None


class _StopOnInterrupt:
    """The first Ctrl-C asks the replay to stop after the batch in hand (saved); a second one stops now."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __call__(self) -> bool:
        return self.requested

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nairstream replay: stopping after this batch (Ctrl-C again to stop now)", file=sys.stderr)

    def __enter__(self) -> _StopOnInterrupt:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread
            self._previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


__all__: Sequence[str] = ["ReplayError", "ReplayState", "ReplaySummary", "Selection", "replay"]
