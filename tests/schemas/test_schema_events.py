"""The event contract: deterministic ids, the wire format, the version policy, no secrets."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from airstream.schemas import (
    SCHEMA_VERSION,
    AssetUpdatedEvent,
    DagRunEvent,
    EventType,
    InvalidEvent,
    InvalidInstanceName,
    TaskInstanceEvent,
    UnknownEventType,
    UnsupportedSchemaVersion,
    derive_event_id,
    message_key,
    parse_event,
    serialize_event,
    validate_instance_name,
)

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def task_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "instance": "prod",
        "event_type": EventType.TASK_INSTANCE_SUCCESS,
        "state": "success",
        "dag_id": "etl",
        "run_id": "manual__2026-01-02",
        "task_id": "extract",
        "map_index": -1,
        "try_number": 1,
        "logical_date": T0,
        "run_type": "manual",
        "start_date": T0,
        "end_date": T0 + timedelta(seconds=3),
        "hostname": "worker-1",
        "operator": "PythonOperator",
        "reported_by": "task",
        "producer": "airstream/test",
    }
    fields.update(overrides)
    return fields


def dag_run_fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "instance": "prod",
        "event_type": EventType.DAG_RUN_SUCCESS,
        "state": "success",
        "dag_id": "etl",
        "run_id": "manual__2026-01-02",
        "clear_number": 0,
        "logical_date": T0,
        "run_type": "manual",
        "start_date": T0,
        "end_date": T0 + timedelta(minutes=1),
        "data_interval_start": T0 - timedelta(days=1),
        "data_interval_end": T0,
        "producer": "airstream/test",
    }
    fields.update(overrides)
    return fields


# --- event_id ---------------------------------------------------------------------------------


def test_task_event_id_is_deterministic_across_emission_times() -> None:
    first = TaskInstanceEvent.new(**task_fields(emitted_at=T0))
    second = TaskInstanceEvent.new(**task_fields(emitted_at=T0 + timedelta(hours=5)))
    assert first.emitted_at != second.emitted_at
    assert first.event_id == second.event_id


def test_dag_run_event_id_is_deterministic_across_emission_times() -> None:
    first = DagRunEvent.new(**dag_run_fields(emitted_at=T0))
    second = DagRunEvent.new(**dag_run_fields())  # emitted_at stamped "now"
    assert first.emitted_at != second.emitted_at
    assert first.event_id == second.event_id


@pytest.mark.parametrize(
    "change",
    [
        {"instance": "staging"},
        {"event_type": EventType.TASK_INSTANCE_FAILED, "state": "failed"},
        {"dag_id": "other_dag"},
        {"run_id": "scheduled__2026-01-03"},
        {"task_id": "load"},
        {"map_index": 0},
        {"try_number": 2},
    ],
    ids=lambda change: "+".join(change),
)
def test_task_event_id_differs_when_an_identity_part_differs(change: dict[str, Any]) -> None:
    base = TaskInstanceEvent.new(**task_fields())
    changed = TaskInstanceEvent.new(**task_fields(**change))
    assert changed.event_id != base.event_id


def test_mapped_task_indexes_have_distinct_ids() -> None:
    ids = {TaskInstanceEvent.new(**task_fields(map_index=index)).event_id for index in range(-1, 5)}
    assert len(ids) == 6


@pytest.mark.parametrize(
    "change",
    [
        {"instance": "staging"},
        {"event_type": EventType.DAG_RUN_FAILED, "state": "failed"},
        {"dag_id": "other_dag"},
        {"run_id": "scheduled__2026-01-03"},
        {"clear_number": 1},
    ],
    ids=lambda change: "+".join(change),
)
def test_dag_run_event_id_differs_when_an_identity_part_differs(change: dict[str, Any]) -> None:
    base = DagRunEvent.new(**dag_run_fields())
    changed = DagRunEvent.new(**dag_run_fields(**change))
    assert changed.event_id != base.event_id


def test_event_id_ignores_non_identity_fields() -> None:
    base = TaskInstanceEvent.new(**task_fields())
    changed = TaskInstanceEvent.new(**task_fields(hostname="worker-2", end_date=None, operator="BashOperator"))
    assert changed.event_id == base.event_id


# --- wire format ------------------------------------------------------------------------------


def test_task_event_round_trip() -> None:
    event = TaskInstanceEvent.new(**task_fields(map_index=3, try_number=2))
    raw = serialize_event(event)
    assert isinstance(raw, bytes)
    parsed = parse_event(raw)
    assert isinstance(parsed, TaskInstanceEvent)
    assert parsed == event
    assert parsed.schema_version == SCHEMA_VERSION


def test_dag_run_event_round_trip() -> None:
    event = DagRunEvent.new(**dag_run_fields(clear_number=2))
    parsed = parse_event(serialize_event(event))
    assert isinstance(parsed, DagRunEvent)
    assert parsed == event
    assert parsed.clear_number == 2


def test_parse_accepts_str_and_dict() -> None:
    event = DagRunEvent.new(**dag_run_fields())
    raw = serialize_event(event)
    assert parse_event(raw.decode()) == event
    assert parse_event(json.loads(raw)) == event


def test_newer_minor_version_with_unknown_fields_parses() -> None:
    event = TaskInstanceEvent.new(**task_fields())
    document = json.loads(serialize_event(event))
    document.update(schema_version="1.7", queue="default", pool_slots=2, future={"nested": True})
    parsed = parse_event(json.dumps(document).encode())
    assert isinstance(parsed, TaskInstanceEvent)
    assert parsed.schema_version == "1.7"
    assert parsed.event_id == event.event_id
    assert not hasattr(parsed, "queue")


def test_unknown_major_version_is_refused_with_upgrade_advice() -> None:
    document = json.loads(serialize_event(TaskInstanceEvent.new(**task_fields())))
    document["schema_version"] = "2.0"
    with pytest.raises(UnsupportedSchemaVersion) as info:
        parse_event(json.dumps(document).encode())
    message = str(info.value)
    assert "upgrade" in message.lower()
    assert "2.0" in message


@pytest.mark.parametrize("version", ["\u00b2.0", "\u2460.0"])  # superscript two, circled one
def test_unicode_digit_like_major_version_raises_invalid_event(version: str) -> None:
    document = json.loads(serialize_event(TaskInstanceEvent.new(**task_fields())))
    document["schema_version"] = version
    # The consumer catches InvalidEvent only (dagster_consumer/sources/kafka.py): anything else is a poison pill.
    with pytest.raises(InvalidEvent):
        parse_event(json.dumps(document).encode())


def test_a_new_event_type_of_a_newer_minor_version_is_an_unknown_event_type() -> None:
    document = json.loads(serialize_event(TaskInstanceEvent.new(**task_fields())))
    document.update(schema_version="1.7", event_type="task_instance.deferred", state="deferred")
    with pytest.raises(UnknownEventType) as info:
        parse_event(json.dumps(document).encode())
    assert info.value.event_type == "task_instance.deferred"
    assert "task_instance.deferred" in str(info.value)
    assert isinstance(info.value, InvalidEvent)  # the listener's spool, which catches InvalidEvent, is unaffected


def test_a_null_value_is_an_invalid_event() -> None:
    with pytest.raises(InvalidEvent, match="tombstone"):
        parse_event(None)


def test_unsupported_schema_version_is_an_invalid_event() -> None:
    assert issubclass(UnsupportedSchemaVersion, InvalidEvent)


def _document_without(key: str) -> bytes:
    document = json.loads(serialize_event(TaskInstanceEvent.new(**task_fields())))
    del document[key]
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(_document_without("schema_version"), id="missing-schema_version"),
        pytest.param(b"\xff\xfe not json at all", id="non-json-bytes"),
        pytest.param(b"{truncated", id="broken-json"),
        pytest.param(b"[1, 2, 3]", id="json-list"),
        pytest.param(_document_without("task_id"), id="task-event-missing-task_id"),
        pytest.param(json.dumps({"schema_version": "1.0", "event_type": 7}).encode(), id="non-string-event-type"),
        pytest.param(b"null", id="json-null"),
    ],
)
def test_invalid_messages_raise_invalid_event(raw: bytes) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw)
    assert not isinstance(info.value, UnsupportedSchemaVersion)


# --- what is (not) carried --------------------------------------------------------------------


@pytest.mark.parametrize("model", [DagRunEvent, TaskInstanceEvent])
def test_models_have_no_field_that_could_carry_secrets(model: type) -> None:
    fields = set(model.model_fields)
    assert "dag_id" in fields  # sanity: we are looking at the real field names
    forbidden = {"conf", "xcom", "params", "connection"}
    assert not fields & forbidden
    assert not [name for name in fields if any(word in name for word in ("conf", "xcom", "password", "secret"))]


def test_message_key_is_the_same_for_every_event_of_one_dag() -> None:
    events = [
        TaskInstanceEvent.new(**task_fields()),
        TaskInstanceEvent.new(**task_fields(task_id="load", run_id="other-run", try_number=3)),
        DagRunEvent.new(**dag_run_fields()),
        DagRunEvent.new(**dag_run_fields(event_type=EventType.DAG_RUN_RUNNING, state="running")),
    ]
    keys = {message_key(event.instance, event.dag_id) for event in events}
    assert len(keys) == 1
    assert isinstance(next(iter(keys)), bytes)
    assert message_key("prod", "etl") != message_key("prod", "other_dag")
    assert message_key("prod", "etl") != message_key("staging", "etl")


def test_ids_of_the_first_event_types_do_not_change_with_the_subject_argument() -> None:
    # Events written by 1.0 listeners must keep deduplicating against 1.1 ones: ids computed by 1.0.
    run = derive_event_id(instance="p", event_type=EventType.DAG_RUN_SUCCESS, dag_id="d", run_id="r", attempt=0)
    assert run == "5c900bc7-f66a-56f5-9f55-3e02da4273c8"
    task = derive_event_id(
        instance="p",
        event_type=EventType.TASK_INSTANCE_SUCCESS,
        dag_id="d",
        run_id="r",
        task_id="t",
        map_index=-1,
        attempt=1,
    )
    assert task == "78c824a3-ab7d-57e0-bb2e-22c225699315"


def test_asset_events_of_different_assets_have_different_ids() -> None:
    common = {
        "instance": "prod",
        "event_type": EventType.ASSET_UPDATED,
        "state": "updated",
        "dag_id": "etl",
        "run_id": "r1",
        "task_id": "load",
        "try_number": 1,
        "producer": "airstream/test",
    }
    first = AssetUpdatedEvent.new(uri="s3://a", **common)
    second = AssetUpdatedEvent.new(uri="s3://b", **common)
    assert first.event_id != second.event_id
    assert AssetUpdatedEvent.new(uri="s3://a", **common).event_id == first.event_id
    assert parse_event(serialize_event(first)) == first


@pytest.mark.parametrize("name", ["prod", "prod_eu_1", "A" * 64])
def test_valid_instance_names(name: str) -> None:
    assert validate_instance_name(name) == name


@pytest.mark.parametrize("name", ["", "prod-eu", "prod eu", "prod\n", "é", "A" * 65, None, 3])
def test_invalid_instance_names_are_refused_with_the_rule(name: object) -> None:
    with pytest.raises(InvalidInstanceName, match="letters, digits and underscores"):
        validate_instance_name(name)
