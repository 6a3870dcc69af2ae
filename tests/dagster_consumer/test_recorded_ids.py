"""RecordedIds against a real (ephemeral) Dagster instance's key-value store: segments, merges,
expiry by event time, what an idle tick writes, and reading back in a new process."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from dagster import DagsterInstance

from airstream.dagster_consumer import recorded_ids as module
from airstream.dagster_consumer.dagster_kvs import read_values, write_values
from airstream.dagster_consumer.recorded_ids import FANOUT, RecordedIds, check_horizon

NOW = datetime(2026, 11, 20, tzinfo=timezone.utc)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


def open_ids(instance: DagsterInstance, pointer: dict | None, *, now: datetime = NOW, **options: object) -> RecordedIds:
    return RecordedIds(instance, "prod__sensor", pointer, now=now, **options)  # type: ignore[arg-type]


def new_process() -> None:
    module._DECODED.clear()


def test_ids_survive_many_commits_merges_and_a_new_process(instance: DagsterInstance) -> None:
    pointer = None
    all_ids: list[str] = []
    for tick in range(200):
        ids = open_ids(instance, pointer)
        batch = [str(uuid.uuid4()) for _ in range(25)]
        for event_id in batch:
            assert ids.add(event_id, NOW - timedelta(minutes=tick))
        all_ids += batch
        pointer = ids.commit()
    assert pointer is not None
    levels = sorted(level for _, _, level, _, _ in pointer["segs"])
    assert len(pointer["segs"]) < 3 * FANOUT, f"merged: {levels}"
    assert max(levels) >= 2, "merged twice over"
    assert len(json.dumps(pointer)) < 1_000, "the pointer the cursor keeps stays small"

    new_process()
    ids = open_ids(instance, pointer)
    assert len(ids) == 5_000
    assert all(event_id in ids for event_id in all_ids)
    assert str(uuid.uuid4()) not in ids
    assert not ids.add(all_ids[0]), "an id recorded 200 commits ago is still a duplicate"


def test_ids_older_than_the_horizon_are_dropped_when_merged(instance: DagsterInstance) -> None:
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    ids = open_ids(instance, None, horizon=timedelta(days=30))
    ids.add(old, NOW - timedelta(days=40))
    ids.add(recent, NOW - timedelta(days=1))
    pointer = ids.commit()
    for _ in range(FANOUT - 1):  # enough commits to merge the first segment
        ids = open_ids(instance, pointer, horizon=timedelta(days=30))
        ids.add(str(uuid.uuid4()), NOW)
        pointer = ids.commit()
    new_process()
    ids = open_ids(instance, pointer, horizon=timedelta(days=30))
    assert recent in ids and old not in ids, "dropped: the event log answers for it"
    assert ids.is_old(NOW - timedelta(days=31)) and not ids.is_old(NOW - timedelta(days=29))


def test_a_segment_whose_newest_id_is_past_the_horizon_goes_whole(instance: DagsterInstance) -> None:
    ids = open_ids(instance, None, horizon=timedelta(days=1))
    ids.add(str(uuid.uuid4()), NOW - timedelta(hours=36))  # kept: within the horizon and its day of grace
    pointer = ids.commit()
    (first_slot,) = [segment[0] for segment in pointer["segs"]]
    later = NOW + timedelta(days=1)
    ids = open_ids(instance, pointer, horizon=timedelta(days=1), now=later)
    ids.add(str(uuid.uuid4()), later)
    pointer = ids.commit()
    assert first_slot not in [segment[0] for segment in pointer["segs"]] and len(pointer["segs"]) == 1
    assert pointer["retired"] == [first_slot]

    ids = open_ids(instance, pointer, horizon=timedelta(days=1), now=later)  # the next writing tick
    ids.add(str(uuid.uuid4()), later)
    reused = first_slot in [segment[0] for segment in ids.commit()["segs"]]
    key = f"airstream/recorded_ids/prod__sensor/{pointer['store']}/{first_slot}"
    assert reused or read_values(instance, [key])[key] == "", "a freed slot is reused or blanked"


def test_a_commit_without_new_ids_writes_nothing(instance: DagsterInstance, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = open_ids(instance, None)
    ids.add(str(uuid.uuid4()), NOW)
    pointer = ids.commit()
    writes: list[object] = []
    monkeypatch.setattr(module, "write_values", lambda *args: writes.append(args))
    again = open_ids(instance, pointer)
    assert again.commit() == pointer and writes == []


def test_a_live_segment_overwritten_makes_the_set_ask_the_event_log(instance: DagsterInstance) -> None:
    ids = open_ids(instance, None)
    ids.add(str(uuid.uuid4()), NOW)
    pointer = ids.commit()
    slot = pointer["segs"][0][0]
    write_values(instance, {f"airstream/recorded_ids/prod__sensor/{pointer['store']}/{slot}": "7 0 "})
    new_process()
    assert open_ids(instance, pointer).degraded


@pytest.mark.parametrize("pointer", [{"store": 5}, {"store": "s", "g": 1, "segs": [["x"]]}, {"g": 1}])
def test_an_unreadable_pointer_is_named(instance: DagsterInstance, pointer: dict) -> None:
    with pytest.raises(module.InvalidRecordedIds, match="ids pointer"):
        open_ids(instance, pointer)


def test_the_horizon_accepts_seconds_and_timedeltas() -> None:
    assert check_horizon(3600) == timedelta(hours=1)
    assert check_horizon(timedelta(days=2)) == timedelta(days=2)
    with pytest.raises(ValueError, match="cannot be turned off"):
        check_horizon(0)
