"""KafkaEventSource against a stand-in consumer, for what the embedded broker cannot do: a log
start above the stored offset (Tansu honours no retention and no DeleteRecords)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import OffsetOutOfRangeError

from airstream.dagster_consumer import KafkaEventSource
from airstream.dagster_consumer.sources.base import OffsetGap
from airstream.schemas import EventType, TaskInstanceEvent, serialize_event

TOPIC = "airflow.events"


@dataclass
class Record:
    offset: int
    value: bytes | None


class RetainedLog:
    """One partition holding offsets ``log_start`` to ``end - 1``, as kafka-python with
    ``auto_offset_reset="none"`` sees it: a fetch below the log start raises."""

    def __init__(self, log_start: int, end: int) -> None:
        self.tp = TopicPartition(TOPIC, 0)
        self.log_start, self.end = log_start, end
        self.at = 0
        self.fetched = False

    def partitions_for_topic(self, topic: str) -> set[int]:
        return {0}

    def assign(self, partitions: list[Any]) -> None:
        pass

    def seek(self, tp: Any, offset: int) -> None:
        self.at = offset

    def seek_to_beginning(self, tp: Any) -> None:
        self.at = self.log_start

    def beginning_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return dict.fromkeys(partitions, self.log_start)

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[Record]]:
        if self.at < self.log_start:
            raise OffsetOutOfRangeError({self.tp: self.at})
        self.fetched = True
        records = [Record(offset, _event(offset)) for offset in range(self.at, min(self.end, self.at + max_records))]
        self.at += len(records)
        return {self.tp: records} if records else {}

    def highwater(self, tp: Any) -> int | None:
        return self.end if self.fetched else None

    def position(self, tp: Any) -> int:
        return self.at


def _event(offset: int) -> bytes:
    return serialize_event(
        TaskInstanceEvent.new(
            instance="prod",
            event_type=EventType.TASK_INSTANCE_SUCCESS,
            state="success",
            dag_id="etl",
            run_id=f"run_{offset}",
            task_id="load",
            try_number=1,
            producer="test",
        )
    )


def test_an_offset_below_the_log_start_resumes_from_the_earliest_and_reports_the_gap() -> None:
    log = RetainedLog(log_start=25, end=30)
    batch = KafkaEventSource("broker:9092", TOPIC)._read(log, {0: 10})
    first_after = batch.events[0].emitted_at
    assert batch.gaps == [
        OffsetGap(
            partition=0,
            stored_offset=10,
            resumed_offset=25,
            reason="below the log start",
            first_event_at=first_after,
        )
    ], "the gap names the time of the first event after it, for the REST gap repair"
    assert [event.run_id for event in batch.events] == [f"run_{offset}" for offset in range(25, 30)]
    assert batch.position == {"0": 30}
    assert batch.caught_up


def test_an_offset_inside_the_log_reports_no_gap() -> None:
    batch = KafkaEventSource("broker:9092", TOPIC)._read(RetainedLog(log_start=25, end=30), {0: 27})
    assert batch.gaps == []
    assert [event.run_id for event in batch.events] == ["run_27", "run_28", "run_29"]


def test_auto_offset_reset_cannot_be_set_through_client_options() -> None:
    with pytest.raises(ValueError, match="drop auto_offset_reset"):
        KafkaEventSource("broker:9092", TOPIC, client_options={"auto_offset_reset": "latest"})


class RecreatedLog(RetainedLog):
    """A log whose metadata names a topic id, as kafka-python 3 keeps it from Metadata v10+."""

    def __init__(self, log_start: int, end: int, topic_id: str) -> None:
        super().__init__(log_start, end)
        cluster = type("Cluster", (), {"topic_id": lambda _self, topic: uuid.UUID(topic_id)})()
        self._client = type("Client", (), {"cluster": cluster})()


def test_a_topic_recreated_past_the_stored_offset_is_read_from_its_start_and_reported() -> None:
    old_id, new_id = str(uuid.uuid4()), str(uuid.uuid4())
    source = KafkaEventSource("broker:9092", TOPIC)
    first = source._read(RecreatedLog(log_start=0, end=3, topic_id=old_id), {})
    assert first.position == {"0": 3, "topic_id": old_id}, "the position keeps the topic's id"

    # Deleted and created again, refilled past offset 3: the same offsets now hold other records.
    batch = source._read(RecreatedLog(log_start=0, end=8, topic_id=new_id), {0: 3}, stored_topic_id=old_id)
    assert [event.run_id for event in batch.events] == [f"run_{offset}" for offset in range(8)], "none skipped"
    assert [(gap.partition, gap.stored_offset, gap.resumed_offset) for gap in batch.gaps] == [(0, 3, 0)]
    assert "topic id changed" in batch.gaps[0].reason
    assert batch.position == {"0": 8, "topic_id": new_id}

    same = source._read(RecreatedLog(log_start=0, end=8, topic_id=new_id), {0: 8}, stored_topic_id=new_id)
    assert same.gaps == [] and same.events == []


def test_a_position_without_a_topic_id_adopts_the_current_one() -> None:
    topic_id = str(uuid.uuid4())
    batch = KafkaEventSource("broker:9092", TOPIC)._read(RecreatedLog(0, 5, topic_id), {0: 5})
    assert batch.gaps == [] and batch.position == {"0": 5, "topic_id": topic_id}
