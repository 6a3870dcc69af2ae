"""Unit tests of dagster_consumer.cursor: the sensor cursor and its event-id window."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from airstream.dagster_consumer.cursor import DEFAULT_DEDUPLICATION_WINDOW, InvalidCursor, SeenEvents, SensorCursor


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


def test_contains_after_a_round_trip() -> None:
    seen = SeenEvents()
    event_id = str(uuid.uuid4())
    seen.add(event_id)
    parsed = SensorCursor.parse(SensorCursor(position={}, seen=seen).serialize())
    assert event_id in parsed.seen


def test_default_window() -> None:
    assert SeenEvents().window == DEFAULT_DEDUPLICATION_WINDOW == 10_000


# --- SensorCursor round trip --------------------------------------------------------------------


def test_serialize_parse_round_trip_keeps_position_and_seen_ids() -> None:
    seen = SeenEvents()
    remembered = [*ids(5), "plain-string-id"]
    for event_id in remembered:
        seen.add(event_id)
    position = {"0": 42, "1": 7}
    raw = SensorCursor(position=position, seen=seen).serialize()
    assert isinstance(raw, str)

    parsed = SensorCursor.parse(raw)
    assert parsed.position == position
    assert len(parsed.seen) == len(remembered)
    for event_id in remembered:
        assert parsed.seen.add(event_id) is False
    assert parsed.seen.add(str(uuid.uuid4())) is True


def test_round_trip_keeps_eviction_order() -> None:
    seen = SeenEvents(window=3)
    a, b, c, d = ids(4)
    for event_id in (a, b, c):
        seen.add(event_id)
    parsed = SensorCursor.parse(SensorCursor(position={}, seen=seen).serialize(), window=3)
    parsed.seen.add(d)  # evicts a, the oldest
    assert parsed.seen.add(b) is False
    assert parsed.seen.add(a) is True


def test_parse_with_smaller_window_keeps_the_newest() -> None:
    seen = SeenEvents(window=10)
    all_ids = ids(5)
    for event_id in all_ids:
        seen.add(event_id)
    parsed = SensorCursor.parse(SensorCursor(position=None, seen=seen).serialize(), window=2)
    assert len(parsed.seen) == 2
    assert parsed.seen.add(all_ids[-1]) is False
    assert parsed.seen.add(all_ids[-2]) is False
    assert parsed.seen.add(all_ids[0]) is True


def test_position_none_round_trips() -> None:
    raw = SensorCursor(position=None, seen=SeenEvents()).serialize()
    assert SensorCursor.parse(raw).position is None


@pytest.mark.parametrize("raw", [None, ""])
def test_parse_empty_starts_from_the_beginning(raw: str | None) -> None:
    cursor = SensorCursor.parse(raw)
    assert cursor.position is None
    assert len(cursor.seen) == 0


def test_parse_empty_uses_the_given_window() -> None:
    assert SensorCursor.parse(None, window=5).seen.window == 5


def test_parse_without_seen_field_has_empty_window() -> None:
    cursor = SensorCursor.parse('{"position": {"0": 3}}')
    assert cursor.position == {"0": 3}
    assert len(cursor.seen) == 0


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
    ],
)
def test_garbage_cursor_raises_invalid_cursor_mentioning_reset(raw: str) -> None:
    with pytest.raises(InvalidCursor) as caught:
        SensorCursor.parse(raw)
    assert "reset" in str(caught.value).lower()
    assert "cursor" in str(caught.value).lower()


def test_seen_whose_length_is_not_whole_ids_is_rejected() -> None:
    # 3 bytes is not a whole 8-byte digest: accepting it misaligns every id after it once the
    # window is serialized again.
    raw = json.dumps({"position": {}, "seen": base64.b64encode(b"\x00\x01\x02").decode()})
    with pytest.raises(InvalidCursor):
        SensorCursor.parse(raw)


def test_invalid_cursor_is_a_value_error() -> None:
    assert issubclass(InvalidCursor, ValueError)


# --- size ---------------------------------------------------------------------------------------


def test_full_default_window_serializes_to_under_150_kb() -> None:
    seen = SeenEvents()
    for event_id in ids(DEFAULT_DEDUPLICATION_WINDOW):
        assert seen.add(event_id)
    assert len(seen) == DEFAULT_DEDUPLICATION_WINDOW
    raw = SensorCursor(position={str(p): 10**9 for p in range(12)}, seen=seen).serialize()
    assert len(raw.encode()) < 150_000

    parsed = SensorCursor.parse(raw)
    assert len(parsed.seen) == DEFAULT_DEDUPLICATION_WINDOW
