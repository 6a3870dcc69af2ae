"""Unit tests of dagster_consumer.cursor: the sensor cursor and the in-memory SeenEvents set."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from airstream.dagster_consumer.cursor import (
    DEFAULT_DEDUPLICATION_WINDOW,
    MAX_ERROR_CHARS,
    InvalidCursor,
    SeenEvents,
    SensorCursor,
)


def ids(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


# --- SeenEvents ---------------------------------------------------------------------------------


def test_add_returns_true_first_time_and_false_for_a_repeat() -> None:
    seen = SeenEvents()
    event_id = str(uuid.uuid4())
    assert seen.add(event_id) is True
    assert seen.add(event_id) is False
    assert len(seen) == 1


def test_add_accepts_ids_that_are_not_uuids() -> None:
    seen = SeenEvents()
    assert seen.add("not-a-uuid") is True
    assert seen.add("not-a-uuid") is False
    assert seen.add("another") is True


def test_window_evicts_the_oldest() -> None:
    seen = SeenEvents(window=3)
    first, *others = ids(4)
    for event_id in (first, *others):
        assert seen.add(event_id) is True
    assert len(seen) == 3
    for event_id in others:
        assert seen.add(event_id) is False, "a recent id was forgotten"
    assert seen.add(first) is True, "the oldest id was not evicted"


def test_repeat_does_not_refresh_or_grow_the_window() -> None:
    seen = SeenEvents(window=2)
    a, b, c = ids(3)
    seen.add(a)
    seen.add(b)
    assert seen.add(a) is False
    assert len(seen) == 2
    seen.add(c)  # evicts a (the oldest by first sighting)
    assert seen.add(b) is False
    assert seen.add(a) is True


def test_contains_looks_without_remembering() -> None:
    seen = SeenEvents(window=2)
    a, b, c = ids(3)
    assert a not in seen
    assert len(seen) == 0, "a lookup must not add the id"
    seen.add(a)
    assert a in seen and b not in seen
    seen.add(b)
    seen.add(c)
    assert a not in seen, "evicted ids are gone for lookups too"
    assert 42 not in seen


def test_default_window() -> None:
    assert SeenEvents().window == DEFAULT_DEDUPLICATION_WINDOW == 10_000


# --- SensorCursor round trip --------------------------------------------------------------------


def test_serialize_parse_round_trip_keeps_every_part() -> None:
    cursor = SensorCursor(
        position={"0": 42, "1": 7},
        ids={"store": "abc", "g": 3, "segs": [[0, 3, 0, 490000, 12]]},
        rest={"position": {"mark": "2026-11-01T00:00:00+00:00"}},
        totals={"recorded": 5, "duplicates": 2},
        times={"0": 1_790_000_000},
        health_at=1_790_000_100.5,
        error="2026-11-30T10:00:00Z something broke",
    )
    parsed = SensorCursor.parse(cursor.serialize())
    assert parsed == cursor


def test_position_none_round_trips() -> None:
    raw = SensorCursor(position=None).serialize()
    assert SensorCursor.parse(raw).position is None


@pytest.mark.parametrize("raw", [None, ""])
def test_parse_empty_starts_from_the_beginning(raw: str | None) -> None:
    cursor = SensorCursor.parse(raw)
    assert cursor.position is None and cursor.ids is None and cursor.legacy_seen == []


def test_empty_parts_are_left_out() -> None:
    assert SensorCursor(position={"0": 3}).serialize() == '{"position":{"0":3}}'


def test_count_adds_to_the_totals_and_skips_zeros() -> None:
    cursor = SensorCursor(position=None)
    cursor.count(recorded=3, duplicates=0)
    cursor.count(recorded=2, skipped=1)
    assert cursor.totals == {"recorded": 5, "skipped": 1}


def test_a_long_error_is_shortened() -> None:
    raw = SensorCursor(position=None, error="x" * 10_000).serialize()
    assert len(SensorCursor.parse(raw).error) == MAX_ERROR_CHARS


# --- the earlier form: a window of ids in the cursor ---------------------------------------------


def test_an_earlier_cursor_gives_its_ids_back_for_migration() -> None:
    seen = SeenEvents()
    remembered = [*ids(5), "plain-string-id"]
    for event_id in remembered:
        seen.add(event_id)
    old = json.dumps({"position": {"0": 42}, "seen": seen.encode()})

    parsed = SensorCursor.parse(old)

    assert parsed.position == {"0": 42}
    assert parsed.legacy_seen == list(seen._order)
    assert "seen" not in json.loads(parsed.serialize()), "the window is never written back"


# --- unreadable cursors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("{not json", id="not-json"),
        pytest.param('{"position": 5}', id="position-not-object"),
        pytest.param('{"position": {}, "seen": "!!not base64!!"}', id="bad-base64-seen"),
        pytest.param('{"seen": ""}', id="no-position"),
        pytest.param("[]", id="json-array"),
        pytest.param("null", id="json-null"),
        pytest.param('{"position": {}, "seen": 5}', id="seen-not-string"),
        pytest.param('{"position": {}, "ids": [1]}', id="ids-not-object"),
        pytest.param('{"position": {}, "totals": {"recorded": "many"}}', id="totals-not-numbers"),
        pytest.param('{"position": {}, "health_at": "soon"}', id="health-at-not-a-number"),
    ],
)
def test_garbage_cursor_raises_invalid_cursor_mentioning_reset(raw: str) -> None:
    with pytest.raises(InvalidCursor) as caught:
        SensorCursor.parse(raw)
    assert "reset" in str(caught.value).lower()
    assert "cursor" in str(caught.value).lower()


def test_seen_whose_length_is_not_whole_ids_is_rejected() -> None:
    # 3 bytes is not a whole 8-byte digest: accepting it would misalign every id after it.
    raw = json.dumps({"position": {}, "seen": base64.b64encode(b"\x00\x01\x02").decode()})
    with pytest.raises(InvalidCursor):
        SensorCursor.parse(raw)


def test_invalid_cursor_is_a_value_error() -> None:
    assert issubclass(InvalidCursor, ValueError)
