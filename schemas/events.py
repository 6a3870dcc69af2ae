"""Pydantic models of the events on the topic, and how their identity is derived.

Version policy: ``schema_version`` is ``MAJOR.MINOR``. A minor version only adds optional
fields and event types; a new major version may change meaning, and consumers refuse majors
they do not know (see :func:`airstream.schemas.parse_event`).

History: 1.0 DAG-run and task-instance events; 1.1 adds the task states ``upstream_failed`` and
``removed``, asset events (``asset.updated``), the ``airflow_version`` field and the task ids
of a finished DAG run; 1.2 adds ``proxied_to_dagster`` to task-instance and DAG-run events
(migration: the task, or the whole DAG, ran in Dagster through a proxy operator).

Nothing secret is carried: no DAG-run ``conf``, no XCom values, no connection data.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from airstream.schemas.naming import INSTANCE_NAME_PATTERN
from airstream.schemas.proxying import DAG_PROXY_TASK_ID, is_proxy_operator

SCHEMA_VERSION = "1.2"

# A fixed namespace so the same fact always gets the same id, on any machine, in any release.
_EVENT_ID_NAMESPACE = uuid.UUID("5d0c3a38-7c55-4d0e-9a51-2f5e0d6f7a11")


class EventType(str, Enum):
    """What happened: the object (DAG run or task instance) and the state it reached."""

    DAG_RUN_RUNNING = "dag_run.running"
    DAG_RUN_SUCCESS = "dag_run.success"
    DAG_RUN_FAILED = "dag_run.failed"
    TASK_INSTANCE_RUNNING = "task_instance.running"
    TASK_INSTANCE_SUCCESS = "task_instance.success"
    TASK_INSTANCE_FAILED = "task_instance.failed"
    TASK_INSTANCE_UP_FOR_RETRY = "task_instance.up_for_retry"
    TASK_INSTANCE_SKIPPED = "task_instance.skipped"
    TASK_INSTANCE_UPSTREAM_FAILED = "task_instance.upstream_failed"
    TASK_INSTANCE_REMOVED = "task_instance.removed"
    ASSET_UPDATED = "asset.updated"

    @property
    def state(self) -> str:
        """The Airflow state this event reports, e.g. ``"success"``."""
        return self.value.split(".", 1)[1]


def derive_event_id(
    *,
    instance: str,
    event_type: EventType,
    dag_id: str,
    run_id: str,
    task_id: str | None = None,
    map_index: int | None = None,
    attempt: int | None = None,
    subject: str | None = None,
) -> str:
    """The deterministic id of one fact: the same fact always yields the same id.

    ``attempt`` is the task's ``try_number`` for task-instance events and the DAG run's
    ``clear_number`` for DAG-run events, so a cleared and re-run DAG run is a new fact.
    ``subject`` names what else the fact is about (an asset event's URI); leaving it out keeps
    the ids of the 1.0 event types unchanged.
    """
    parts: list[object] = [instance, event_type.value, dag_id, run_id, task_id, map_index, attempt]
    if subject is not None:
        parts.append(subject)
    key = "\x1f".join("" if part is None else str(part) for part in parts)
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, key))


def message_key(instance: str, dag_id: str) -> bytes:
    """The Kafka message key: one DAG's events always land in the same partition, in order."""
    return f"{instance}/{dag_id}".encode()


_E = TypeVar("_E", bound="_EventBase")


class _EventBase(BaseModel):
    # Unknown fields come from a newer minor version: ignore them rather than fail.
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: str = Field(default=SCHEMA_VERSION, pattern=r"^\d+\.\d+$")
    event_id: str = Field(description="Deterministic id of this fact; consumers deduplicate on it.")
    instance: str = Field(
        description="Name of the Airflow instance that emitted the event.", pattern=INSTANCE_NAME_PATTERN
    )
    dag_id: str
    run_id: str
    state: str = Field(description="The Airflow state reached, as Airflow names it.")
    logical_date: datetime | None = None
    run_type: str | None = Field(default=None, description="manual, scheduled, backfill, asset_triggered…")
    start_date: datetime | None = None
    end_date: datetime | None = None
    emitted_at: datetime = Field(description="When the listener built the event (UTC).")
    producer: str = Field(description="The software that wrote the event, e.g. airstream/0.1.0.")
    airflow_version: str | None = Field(default=None, description="The emitting Airflow's version, e.g. 2.11.2.")

    if TYPE_CHECKING:  # each model declares its own Literal of event types
        event_type: EventType

    @classmethod
    def new(cls: type[_E], **fields: Any) -> _E:
        """Build the event, deriving its ``event_id`` and stamping ``emitted_at`` if absent."""
        fields.setdefault("emitted_at", datetime.now(timezone.utc))
        draft = cls(event_id="", **fields)
        return draft.model_copy(update={"event_id": derive_event_id(**draft.identity())})

    def identity(self) -> dict[str, Any]:
        """The fields that make this fact what it is: the input of :func:`derive_event_id`."""
        return {"instance": self.instance, "event_type": self.event_type, "dag_id": self.dag_id, "run_id": self.run_id}


class DagRunEvent(_EventBase):
    """A DAG run reached ``running``, ``success`` or ``failed``."""

    event_type: Literal[EventType.DAG_RUN_RUNNING, EventType.DAG_RUN_SUCCESS, EventType.DAG_RUN_FAILED]
    clear_number: int = Field(default=0, description="How many times the run was cleared and re-run.")
    data_interval_start: datetime | None = None
    data_interval_end: datetime | None = None
    task_ids: list[str] | None = Field(
        default=None, description="The run's task ids, on success and failed events: what the DAG held."
    )
    proxied_to_dagster: bool = Field(
        default=False,
        description="The whole DAG ran in Dagster (proxied at DAG level); when absent, true if task_ids is "
        f"exactly [{DAG_PROXY_TASK_ID!r}].",
    )

    @model_validator(mode="before")
    @classmethod
    def _proxied_from_task_ids(cls, data: Any) -> Any:
        # Events of 1.1 producers, and the REST source, say it only through the DAG's one task.
        if isinstance(data, dict) and "proxied_to_dagster" not in data and data.get("task_ids") == [DAG_PROXY_TASK_ID]:
            return {**data, "proxied_to_dagster": True}
        return data

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "attempt": self.clear_number}


class TaskInstanceEvent(_EventBase):
    """A task instance reached ``running``, ``success``, ``failed``, ``up_for_retry``, ``skipped``,
    ``upstream_failed`` or ``removed``."""

    event_type: Literal[
        EventType.TASK_INSTANCE_RUNNING,
        EventType.TASK_INSTANCE_SUCCESS,
        EventType.TASK_INSTANCE_FAILED,
        EventType.TASK_INSTANCE_UP_FOR_RETRY,
        EventType.TASK_INSTANCE_SKIPPED,
        EventType.TASK_INSTANCE_UPSTREAM_FAILED,
        EventType.TASK_INSTANCE_REMOVED,
    ]
    task_id: str
    map_index: int = Field(default=-1, description="-1 for a task that is not dynamically mapped.")
    try_number: int
    hostname: str | None = None
    operator: str | None = Field(default=None, description="The operator's class name.")
    reported_by: str | None = Field(
        default=None, description="Which Airflow process saw the change: task, scheduler or api-server."
    )
    proxied_to_dagster: bool = Field(
        default=False,
        description="The task ran a proxy operator: Dagster executed it and materialized its assets. When absent, "
        "true if the operator is a proxy operator's marker.",
    )

    @model_validator(mode="before")
    @classmethod
    def _proxied_from_operator(cls, data: Any) -> Any:
        # Events of 1.1 producers, and the REST source, say it only through the operator name.
        if isinstance(data, dict) and "proxied_to_dagster" not in data and is_proxy_operator(data.get("operator")):
            return {**data, "proxied_to_dagster": True}
        return data

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "task_id": self.task_id, "map_index": self.map_index, "attempt": self.try_number}


class AssetUpdatedEvent(_EventBase):
    """A task's run updated an Airflow asset (a dataset on Airflow 2): one event per asset the
    task declares as an outlet, when the task succeeds. ``state`` is ``updated``."""

    event_type: Literal[EventType.ASSET_UPDATED]
    uri: str = Field(description="The asset's URI, as the DAG declares it.")
    name: str | None = Field(default=None, description="The asset's name (Airflow 3), if it has one.")
    task_id: str = Field(description="The task that produced the update.")
    map_index: int = -1
    try_number: int

    def identity(self) -> dict[str, Any]:
        return {
            **super().identity(),
            "task_id": self.task_id,
            "map_index": self.map_index,
            "attempt": self.try_number,
            "subject": self.uri,
        }


Event = Annotated[DagRunEvent | TaskInstanceEvent | AssetUpdatedEvent, Field(discriminator="event_type")]
