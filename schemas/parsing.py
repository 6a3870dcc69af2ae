"""Turning bytes on the topic into events and back, with the version check in one place."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import TypeAdapter, ValidationError

from airstream.schemas.errors import InvalidEvent, UnknownEventType, UnsupportedSchemaVersion
from airstream.schemas.events import SCHEMA_VERSION, Event, EventType

SUPPORTED_MAJOR = int(SCHEMA_VERSION.split(".")[0])

_VERSION = re.compile(r"[0-9]+\.[0-9]+")

_EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
_KNOWN_EVENT_TYPES = frozenset(event_type.value for event_type in EventType)


def serialize_event(event: Event) -> bytes:
    """The event as UTF-8 JSON, the form it takes on the topic."""
    return event.model_dump_json().encode()


def parse_event(raw: bytes | str | dict[str, Any] | None) -> Event:
    """Parse one message into an event.

    Raises :class:`UnsupportedSchemaVersion` for a major version this release does not read,
    :class:`UnknownEventType` for an event type a newer minor version of the known major added
    (skip it: minor versions are compatible), and :class:`InvalidEvent` for anything else that
    is not a valid event (including ``None``, a Kafka tombstone). Fields added by a newer minor
    version are ignored.
    """
    document = _as_document(raw)
    version = document.get("schema_version")
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise InvalidEvent(f"event has no valid schema_version (got {version!r}); expected e.g. '1.0'")
    major = int(version.partition(".")[0])
    if major != SUPPORTED_MAJOR:
        raise UnsupportedSchemaVersion(
            f"event schema version {version} is not supported: this airstream reads major version "
            f"{SUPPORTED_MAJOR}; upgrade airstream on the Dagster side to read version {major}.x events"
        )
    event_type = document.get("event_type")
    if isinstance(event_type, str) and event_type not in _KNOWN_EVENT_TYPES:
        raise UnknownEventType(
            f"event type {event_type!r} (schema version {version}) is not known to this airstream, which reads "
            f"{SCHEMA_VERSION}; a newer minor version added it, skipped",
            event_type,
        )
    try:
        return _EVENT_ADAPTER.validate_python(document)
    except ValidationError as error:
        raise InvalidEvent(f"event does not match schema {version}: {error}") from error


def _as_document(raw: bytes | str | dict[str, Any] | None) -> dict[str, Any]:
    if raw is None:
        raise InvalidEvent("the message has no value (a null value, or a Kafka tombstone)")
    if isinstance(raw, dict):
        return raw
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidEvent(f"event is not valid UTF-8 JSON: {error}") from error
    if not isinstance(document, dict):
        raise InvalidEvent(f"event must be a JSON object, got {type(document).__name__}")
    return document
