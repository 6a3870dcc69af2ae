"""The committed JSON Schema documents of the event models.

Regenerate after changing a model: ``python -m airstream.schemas.json_schema``. A test fails when the
committed files drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from airstream.schemas.events import AssetUpdatedEvent, DagRunEvent, TaskInstanceEvent

JSON_SCHEMA_DIR = Path(__file__).parent / "json"

MODELS: dict[str, type[BaseModel]] = {
    "dag_run_event": DagRunEvent,
    "task_instance_event": TaskInstanceEvent,
    "asset_updated_event": AssetUpdatedEvent,
}


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema document, generated from the models."""
    return {f"{name}.v1.json": model.model_json_schema() for name, model in MODELS.items()}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main() -> None:
    JSON_SCHEMA_DIR.mkdir(exist_ok=True)
    for file_name, document in schema_documents().items():
        (JSON_SCHEMA_DIR / file_name).write_text(render(document))
        print(f"wrote {JSON_SCHEMA_DIR / file_name}")


if __name__ == "__main__":
    main()
