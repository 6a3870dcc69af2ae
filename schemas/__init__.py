"""The event contract between the Airflow listener and the Dagster consumer.

Every message on the airstream topic is one JSON document: a :class:`DagRunEvent`, a
:class:`TaskInstanceEvent` or an :class:`AssetUpdatedEvent`. Both sides import these models and
nothing else from each other.

Example::

    from airstream.schemas import parse_event

    event = parse_event(message.value)   # raises InvalidEvent / UnsupportedSchemaVersion / UnknownEventType
    if event.event_type == EventType.TASK_INSTANCE_SUCCESS:
        ...
"""

from airstream.schemas.errors import InvalidEvent, UnknownEventType, UnsupportedSchemaVersion
from airstream.schemas.events import (
    SCHEMA_VERSION,
    AssetUpdatedEvent,
    DagRunEvent,
    Event,
    EventType,
    TaskInstanceEvent,
    derive_event_id,
    message_key,
)
from airstream.schemas.naming import INSTANCE_NAME_PATTERN, InvalidInstanceName, validate_instance_name
from airstream.schemas.parsing import parse_event, serialize_event

__all__ = [
    "INSTANCE_NAME_PATTERN",
    "SCHEMA_VERSION",
    "AssetUpdatedEvent",
    "DagRunEvent",
    "Event",
    "EventType",
    "InvalidEvent",
    "InvalidInstanceName",
    "TaskInstanceEvent",
    "UnknownEventType",
    "UnsupportedSchemaVersion",
    "derive_event_id",
    "message_key",
    "parse_event",
    "serialize_event",
    "validate_instance_name",
]
