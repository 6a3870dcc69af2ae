"""The committed JSON Schema documents match the models, and real events validate against them."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import jsonschema
import pytest

from airstream.schemas import AssetUpdatedEvent, DagRunEvent, EventType, TaskInstanceEvent, serialize_event
from airstream.schemas.json_schema import JSON_SCHEMA_DIR, render, schema_documents

REGENERATE = "run `python -m airstream.schemas.json_schema` and commit schemas/json/"

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

SAMPLES = {
    "dag_run_event.v1.json": DagRunEvent.new(
        instance="prod",
        event_type=EventType.DAG_RUN_FAILED,
        state="failed",
        dag_id="etl",
        run_id="manual__1",
        clear_number=1,
        logical_date=T0,
        start_date=T0,
        producer="airstream/test",
    ),
    "task_instance_event.v1.json": TaskInstanceEvent.new(
        instance="prod",
        event_type=EventType.TASK_INSTANCE_UP_FOR_RETRY,
        state="up_for_retry",
        dag_id="etl",
        run_id="manual__1",
        task_id="extract",
        map_index=4,
        try_number=2,
        start_date=T0,
        operator="PythonOperator",
        producer="airstream/test",
    ),
    "asset_updated_event.v1.json": AssetUpdatedEvent.new(
        instance="prod",
        event_type=EventType.ASSET_UPDATED,
        state="updated",
        dag_id="etl",
        run_id="manual__1",
        task_id="load",
        try_number=1,
        uri="s3://warehouse/orders.parquet",
        producer="airstream/test",
        airflow_version="2.11.2",
    ),
}


def committed(file_name: str) -> dict[str, Any]:
    return json.loads((JSON_SCHEMA_DIR / file_name).read_text())


def test_committed_documents_match_the_models() -> None:
    generated = schema_documents()
    on_disk = sorted(path.name for path in JSON_SCHEMA_DIR.glob("*.json"))
    assert on_disk == sorted(generated), (
        f"schemas/json/ holds {on_disk}, the models give {sorted(generated)}: {REGENERATE}"
    )
    for file_name, document in generated.items():
        text = (JSON_SCHEMA_DIR / file_name).read_text()
        assert text == render(document), f"schemas/json/{file_name} is out of date with the models: {REGENERATE}"


def test_samples_cover_every_document() -> None:
    assert set(SAMPLES) == set(schema_documents())


@pytest.mark.parametrize("file_name", sorted(SAMPLES))
def test_serialized_event_validates_against_committed_document(file_name: str) -> None:
    document = committed(file_name)
    jsonschema.Draft202012Validator.check_schema(document)
    instance = json.loads(serialize_event(SAMPLES[file_name]))
    jsonschema.validate(instance, document, cls=jsonschema.Draft202012Validator)


@pytest.mark.parametrize("file_name", sorted(SAMPLES))
def test_event_without_dag_id_fails_validation(file_name: str) -> None:
    document = committed(file_name)
    instance = json.loads(serialize_event(SAMPLES[file_name]))
    del instance["dag_id"]
    with pytest.raises(jsonschema.ValidationError, match="dag_id"):
        jsonschema.validate(instance, document, cls=jsonschema.Draft202012Validator)


def test_documents_reject_the_other_kind_of_event() -> None:
    task_event = json.loads(serialize_event(SAMPLES["task_instance_event.v1.json"]))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(task_event, committed("dag_run_event.v1.json"), cls=jsonschema.Draft202012Validator)
