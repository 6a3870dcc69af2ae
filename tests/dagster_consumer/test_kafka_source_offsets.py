"""KafkaEventSource against a stand-in consumer, for what the embedded broker cannot do: a log
start above the stored offset (Tansu honours no retention and no DeleteRecords)."""

from __future__ import annotations

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
