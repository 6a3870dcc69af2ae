"""Reading events from a Kafka topic by assigning partitions and seeking to stored offsets.

No consumer group is joined and nothing is committed to Kafka: the offsets live in the Dagster
sensor's cursor, so a restart neither loses nor repeats work.

A stored offset the broker no longer has is never skipped silently (kafka-python's
``auto_offset_reset`` would jump to the end): below the log start (retention passed a paused
sensor) the broker answers "out of range", beyond the high watermark (the topic was recreated)
the fetch says so, and a topic recreated and refilled past the stored offsets has another topic
id than the one kept in the position (``topic_id``, from Kafka 2.8+ metadata); in each case
reading resumes at the earliest offset the broker still has and the batch reports an
:class:`~airstream.dagster_consumer.sources.base.OffsetGap`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from airstream.dagster_consumer.sources.base import (
    EventBatch,
    EventSource,
    EventSourceUnavailable,
    OffsetGap,
    Position,
    RejectedMessage,
    event_time,
)
from airstream.dagster_consumer.sources.kafka_errors import connection_failures, explain
from airstream.schemas import Event, InvalidEvent, UnknownEventType, parse_event

_BEYOND_THE_END = "beyond the end of the partition: was the topic deleted and created again?"
_RECREATED = "the topic was deleted and created again (its topic id changed)"
# The position's entry holding the topic's id (Kafka 2.8+ metadata), beside partition → offset.
TOPIC_ID = "topic_id"


def partition_offsets(position: Position | None) -> dict[int, int]:
    """Partition → next offset of a Kafka position (its ``topic_id`` entry aside)."""
    return {int(key): int(value) for key, value in (position or {}).items() if key != TOPIC_ID}


def _topic_id(consumer: Any, topic: str) -> str | None:
    """The topic's id from the metadata kafka-python fetched (Metadata v10+: Kafka 2.8+), or None
    where the broker or client does not give one."""
    cluster = getattr(getattr(consumer, "_client", None), "cluster", None)
    found = cluster.topic_id(topic) if cluster is not None and hasattr(cluster, "topic_id") else None
    if found is None or int(getattr(found, "int", 1)) == 0:  # unknown, or the all-zero id
        return None
    return str(found)


class KafkaEventSource(EventSource):
    """Airflow events from a Kafka topic written by the airstream listener.

    Args:
        bootstrap_servers: ``host:port[,host:port]`` of the cluster.
        topic: the topic the listener publishes to.
        max_events_per_tick: stop reading after this many messages in one sensor tick.
        max_seconds_per_tick: stop reading after this long in one sensor tick.
        client_options: passed to kafka-python's ``KafkaConsumer`` as they are, for security
            (``security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
            sasl_plain_username=..., sasl_plain_password=..., ssl_cafile=...``) and tuning.
        partitions: read only these partitions of the topic (``None``: all of them), for a static
            split of the topic between several ``airstream stream`` processes; a position's
            entries for other partitions are left out of the positions it returns.
        dead_letter_topic: a topic each poison message (not an event, a null value, a failed
            schema, an unknown major version) is copied to, as it is (key, value, headers), with
            the headers ``airstream-error`` (why) and ``airstream-origin`` (``topic[partition]@offset``).
            The copy is flushed before the tick returns; if it fails, the tick fails and nothing
            is consumed. Events of an unknown type are not copied (they are tolerated).

    Example::

        KafkaEventSource(bootstrap_servers="broker:9092", topic="airflow.events")
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = "airflow.events",
        *,
        max_events_per_tick: int = 5000,
        max_seconds_per_tick: float = 10.0,
        connect_timeout_seconds: float = 10.0,
        client_options: Mapping[str, Any] | None = None,
        dead_letter_topic: str | None = None,
        partitions: Sequence[int] | None = None,
    ) -> None:
        if not bootstrap_servers or not bootstrap_servers.strip():
            raise ValueError("KafkaEventSource: bootstrap_servers is empty; pass host:port[,host:port]")
        if not topic:
            raise ValueError("KafkaEventSource: topic is empty; pass the topic the listener publishes to")
        if max_events_per_tick < 1 or max_seconds_per_tick <= 0:
            raise ValueError("KafkaEventSource: max_events_per_tick and max_seconds_per_tick must be positive")
        self.bootstrap_servers = [server.strip() for server in bootstrap_servers.split(",") if server.strip()]
        self.topic = topic
        self.max_events_per_tick = max_events_per_tick
        self.max_seconds_per_tick = max_seconds_per_tick
        self.connect_timeout_seconds = connect_timeout_seconds
        self.client_options = dict(client_options or {})
        if "auto_offset_reset" in self.client_options:
            raise ValueError(
                "KafkaEventSource: drop auto_offset_reset from client_options: airstream resumes an offset the broker "
                "no longer has from the earliest one and reports the gap, it never jumps"
            )
        if dead_letter_topic is not None and (not dead_letter_topic.strip() or dead_letter_topic == topic):
            raise ValueError(
                f"KafkaEventSource: dead_letter_topic must be a topic other than {topic!r} (got {dead_letter_topic!r})"
            )
        self.dead_letter_topic = dead_letter_topic
        if partitions is not None and (not partitions or any(int(p) < 0 for p in partitions)):
            raise ValueError(f"KafkaEventSource: partitions must be partition numbers, 0 or more (got {partitions!r})")
        self.partitions = frozenset(int(p) for p in partitions) if partitions is not None else None
        self._session: _Session | None = None

    def describe(self) -> str:
        where = f"kafka://{','.join(self.bootstrap_servers)}/{self.topic}"
        return where + (f" (partitions {','.join(map(str, sorted(self.partitions)))})" if self.partitions else "")

    def read(self, position: Position | None) -> EventBatch:
        offsets = partition_offsets(position)
        if self.partitions is not None:
            offsets = {p: o for p, o in offsets.items() if p in self.partitions}
        session = self._session
        if session is not None and session.consumer is None:
            # A kept connection's fetches must not outwait max_wait at the broker either.
            wait = {"fetch_max_wait_ms": min(500, max(10, int(session.max_wait * 1000)))}
            session.consumer = self._connect(**{k: v for k, v in wait.items() if k not in self.client_options})
        consumer = session.consumer if session is not None else self._connect()
        try:
            return self._read(consumer, offsets, stored_topic_id=(position or {}).get(TOPIC_ID), session=session)
        except Exception as error:
            if session is not None:  # a failed read may leave the client in any state: connect afresh next time
                session.consumer = None
                session.offsets = None
                consumer.close()
            if isinstance(error, EventSourceUnavailable):
                raise
            # kafka-python raises many types; name the source in one
            raise EventSourceUnavailable(f"reading {self.describe()} failed: {error}") from error
        finally:
            if session is None:
                consumer.close()

    @contextmanager
    def session(self, max_wait: float = 0.5) -> Iterator[KafkaEventSource]:
        """Keep one connection open for every :meth:`read` inside the ``with`` block (a long-running
        reader, ``airstream stream``), instead of one per read (a sensor tick).

        Inside the block a read waits at most ``max_wait`` seconds for a first message, returns as
        soon as it has read to the end of what the broker has, and keeps the client's fetched data
        when the next read starts where the last one ended. Outside it nothing changes.

        Example::

            with source.session(max_wait=0.2):
                while running:
                    batch = source.read(position)
                    position = batch.position
        """
        if max_wait <= 0:
            raise ValueError(f"KafkaEventSource.session: max_wait must be positive seconds (got {max_wait!r})")
        if self._session is not None:
            raise RuntimeError(f"{self.describe()}: a session is already open on this source")
        self._session = _Session(max_wait=max_wait)
        try:
            yield self
        finally:
            session, self._session = self._session, None
            if session.consumer is not None:
                session.consumer.close()

    def _connect(self, **overrides: Any) -> Any:
        from kafka import KafkaConsumer

        found: list[BaseException] = []
        try:
            with connection_failures() as found:
                return KafkaConsumer(
                    bootstrap_servers=self.bootstrap_servers,
                    group_id=None,
                    enable_auto_commit=False,
                    client_id="airstream-dagster-consumer",
                    auto_offset_reset="none",  # an offset out of range raises: never a silent jump
                    bootstrap_timeout_ms=int(self.connect_timeout_seconds * 1000),
                    **self.client_options,
                    **overrides,
                )
        except Exception as error:
            raise EventSourceUnavailable(explain(self.bootstrap_servers, self.client_options, found)) from error

    def _read(
        self, consumer: Any, offsets: dict[int, int], stored_topic_id: object = None, session: _Session | None = None
    ) -> EventBatch:
        from kafka import TopicPartition
        from kafka.errors import OffsetOutOfRangeError

        partitions = consumer.partitions_for_topic(self.topic)
        if partitions and self.partitions is not None:
            missing = self.partitions - set(partitions)
            if missing:
                raise EventSourceUnavailable(
                    f"{self.describe()}: the topic has no partition {', '.join(map(str, sorted(missing)))} "
                    f"(it has {', '.join(map(str, sorted(partitions)))}); pass partitions the topic has"
                )
            partitions = self.partitions
        if not partitions:
            return EventBatch(
                events=[],
                position={
                    **{str(p): o for p, o in offsets.items()},
                    **({TOPIC_ID: stored_topic_id} if isinstance(stored_topic_id, str) else {}),
                },
            )
        topic_id = _topic_id(consumer, self.topic)
        assigned = [TopicPartition(self.topic, partition) for partition in sorted(partitions)]
        consumer.assign(assigned)
        recreated: list[Any] = []
        # A kept connection already stands where the last read ended: seeking again would drop
        # what the client has fetched ahead.
        in_place = session is not None and session.offsets == offsets and session.topic_id == topic_id
        for topic_partition in [] if in_place else assigned:
            if topic_partition.partition in offsets:
                consumer.seek(topic_partition, offsets[topic_partition.partition])
                if isinstance(stored_topic_id, str) and topic_id is not None and stored_topic_id != topic_id:
                    recreated.append(topic_partition)
            else:
                consumer.seek_to_beginning(topic_partition)

        events: list[Event] = []
        rejected: list[RejectedMessage] = []
        poison: list[tuple[Any, RejectedMessage]] = []
        unknown_types: list[RejectedMessage] = []
        gaps: list[OffsetGap] = []
        newest_at: dict[str, datetime] = {}
        first_after_gap: dict[int, datetime | None] = {}
        for topic_partition in recreated:  # a new log under the same name: the stored offsets mean nothing in it
            stored = offsets[topic_partition.partition]
            gaps.append(self._resume_from_earliest(consumer, topic_partition, stored, _RECREATED))
            offsets[topic_partition.partition] = gaps[-1].resumed_offset
            first_after_gap[topic_partition.partition] = None
        deadline = time.monotonic() + self.max_seconds_per_tick
        read = 0
        poll_ms = int(session.max_wait * 1000) if session is not None else 500
        while read < self.max_events_per_tick and time.monotonic() < deadline:
            try:
                polled = consumer.poll(timeout_ms=poll_ms, max_records=self.max_events_per_tick - read)
            except OffsetOutOfRangeError as error:  # below the log start: retention passed the cursor
                for topic_partition, offset in dict(error.args[0] if error.args else {}).items():
                    gaps.append(self._resume_from_earliest(consumer, topic_partition, offset, "below the log start"))
                    offsets[topic_partition.partition] = gaps[-1].resumed_offset
                    first_after_gap[topic_partition.partition] = None
                continue
            for topic_partition, records in polled.items():
                for record in records:
                    read += 1
                    offsets[topic_partition.partition] = record.offset + 1
                    where = f"{self.topic}[{topic_partition.partition}]@{record.offset}"
                    try:
                        events.append(parse_event(record.value))
                        when = event_time(events[-1])
                        key = str(topic_partition.partition)
                        newest_at[key] = max(newest_at.get(key, when), when)
                        if first_after_gap.get(topic_partition.partition, when) is None:
                            first_after_gap[topic_partition.partition] = when
                    except UnknownEventType as error:  # a newer minor version: tolerated, counted
                        unknown_types.append(RejectedMessage(where=where, reason=str(error)))
                    except (InvalidEvent, ValueError, TypeError) as error:  # never let one message stall the sensor
                        rejected.append(RejectedMessage(where=where, reason=str(error)))
                        poison.append((record, rejected[-1]))
            if not polled:
                beyond = self._beyond_the_end(consumer, assigned)
                for topic_partition, offset in beyond.items():
                    gaps.append(self._resume_from_earliest(consumer, topic_partition, offset, _BEYOND_THE_END))
                    offsets[topic_partition.partition] = gaps[-1].resumed_offset
                    first_after_gap[topic_partition.partition] = None
                if not beyond and self._caught_up(consumer, assigned):
                    break
            elif self._caught_up(consumer, assigned):
                # Hand over what was read at once: under a steady flow a poll is never empty, and
                # waiting for one would hold every tick to max_seconds_per_tick.
                break
        if poison and self.dead_letter_topic:
            self._dead_letter(poison)
        ends = {str(tp.partition): int(end) for tp in assigned if (end := consumer.highwater(tp)) is not None}
        position: Position = {str(partition): offset for partition, offset in sorted(offsets.items())}
        if topic_id is not None:
            position[TOPIC_ID] = topic_id
        if session is not None:
            session.offsets, session.topic_id = dict(offsets), topic_id
        return EventBatch(
            events=events,
            position=position,
            rejected=rejected,
            unknown_types=unknown_types,
            gaps=[replace(gap, first_event_at=first_after_gap.get(gap.partition)) for gap in gaps],
            caught_up=self._caught_up(consumer, assigned),
            ends=ends,
            newest_at=newest_at,
            dead_lettered=len(poison) if self.dead_letter_topic else 0,
        )

    def _dead_letter(self, poison: list[tuple[Any, RejectedMessage]]) -> None:
        from kafka import KafkaProducer

        options = {key: value for key, value in self.client_options.items() if key in KafkaProducer.DEFAULT_CONFIG}
        producer = KafkaProducer(
            bootstrap_servers=self.bootstrap_servers, acks="all", client_id="airstream-dagster-consumer", **options
        )
        try:
            sent = []
            for record, rejected in poison:
                headers = [
                    *(record.headers or []),
                    ("airstream-error", rejected.reason.encode()),
                    ("airstream-origin", rejected.where.encode()),
                ]
                sent.append(producer.send(self.dead_letter_topic, key=record.key, value=record.value, headers=headers))
            producer.flush(timeout=self.connect_timeout_seconds)
            for future in sent:
                future.get(timeout=self.connect_timeout_seconds)  # raises what the broker answered
        except Exception as error:
            raise EventSourceUnavailable(
                f"copying {len(poison)} poison message(s) to the dead-letter topic {self.dead_letter_topic!r} failed "
                f"({error}); nothing was consumed, the next tick tries again"
            ) from error
        finally:
            producer.close(timeout=self.connect_timeout_seconds)

    @staticmethod
    def _beyond_the_end(consumer: Any, assigned: list[Any]) -> dict[Any, int]:
        """Partitions whose position is past the high watermark the last fetch reported."""
        beyond = {}
        for topic_partition in assigned:
            highwater = consumer.highwater(topic_partition)
            position = consumer.position(topic_partition)
            if highwater is not None and position is not None and position > highwater:
                beyond[topic_partition] = position
        return beyond

    @staticmethod
    def _resume_from_earliest(consumer: Any, topic_partition: Any, stored: int, reason: str) -> OffsetGap:
        earliest = int(consumer.beginning_offsets([topic_partition])[topic_partition])
        consumer.seek(topic_partition, earliest)
        return OffsetGap(
            partition=topic_partition.partition, stored_offset=int(stored), resumed_offset=earliest, reason=reason
        )

    @staticmethod
    def _caught_up(consumer: Any, assigned: list[Any]) -> bool:
        # The high watermark seen in fetch responses is right on every broker we support
        # (end_offsets is not, on some Kafka-protocol brokers).
        for topic_partition in assigned:
            highwater = consumer.highwater(topic_partition)
            if highwater is None or consumer.position(topic_partition) < highwater:
                return False
        return True


@dataclass
class _Session:
    """The connection a :meth:`KafkaEventSource.session` keeps, and where its last read ended."""

    max_wait: float
    consumer: Any = None
    offsets: dict[int, int] | None = None
    topic_id: str | None = None
