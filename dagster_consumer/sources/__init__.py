"""Where events come from. Every source yields the same ``schemas`` events, so one translation
serves them all (see :mod:`airstream.dagster_consumer.translate`)."""

from airstream.dagster_consumer.sources.base import (
    EventBatch,
    EventSource,
    EventSourceUnavailable,
    OffsetGap,
    RejectedMessage,
)
from airstream.dagster_consumer.sources.kafka import KafkaEventSource
from airstream.dagster_consumer.sources.rest import RestEventSource

__all__ = [
    "EventBatch",
    "EventSource",
    "EventSourceUnavailable",
    "KafkaEventSource",
    "OffsetGap",
    "RejectedMessage",
    "RestEventSource",
]
