"""Errors raised when a message on the topic is not a usable airstream event."""


class InvalidEvent(ValueError):
    """The message is not valid JSON or does not match the event schema."""


class UnsupportedSchemaVersion(InvalidEvent):
    """The event was written with a major schema version this consumer does not know.

    Upgrade the consumer (``airstream[dagster]``) to a release that reads that version.
    """


class UnknownEventType(InvalidEvent):
    """The event's major schema version is known but its ``event_type`` is not: a newer minor
    version added it. Consumers skip such an event and count it; it is not an error.
    """

    def __init__(self, message: str, event_type: str) -> None:
        super().__init__(message)
        self.event_type = event_type
