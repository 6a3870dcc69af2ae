"""Errors raised when a message on the topic is not a usable airstream event."""


class InvalidEvent(ValueError):
    """The message is not valid JSON or does not match the event schema."""


class UnsupportedSchemaVersion(InvalidEvent):
    """The event was written with a major schema version this consumer does not know.

    Upgrade the consumer (``airstream[dagster]``) to a release that reads that version.
    """
