"""Sending events to Kafka with kafka-python, within a deadline.

The producer is created lazily, in the process that uses it: Kafka client threads do not
survive ``fork``, and Airflow forks task processes from long-lived ones.

kafka-python logs every refused connection at ERROR, which would put error lines into the logs
of tasks that succeeded. Unless a deployment sets a level for the ``kafka`` logger itself, the
listener sets it to CRITICAL; airstream's own WARNING says once per failed delivery what
happened and how many events stay spooled.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airstream.airflow_listener.broker_errors import collect_connection_failures, explain_connection_failure
from airstream.airflow_listener.config import ListenerConfig
from airstream.schemas import Event, message_key, serialize_event

log = logging.getLogger(__name__)


class DeliveryError(RuntimeError):
    """The broker did not acknowledge an event in time."""


@dataclass(frozen=True)
class SendOutcome:
    """What became of a sequence of events sent in order.

    ``settled`` leading events have a final answer: acknowledged, or refused for good (their
    index in ``refused``, with the reason). The events after them are still to be sent.
    """

    settled: int
    refused: dict[int, str] = field(default_factory=dict)

    @property
    def acknowledged(self) -> int:
        return self.settled - len(self.refused)


def _refused_for_good() -> tuple[type[Exception], ...]:
    """kafka-python's errors that sending the same record again cannot cure."""
    from kafka import errors

    names = [
        "MessageSizeTooLargeError",
        "RecordListTooLargeError",
        "TopicAuthorizationFailedError",
        "InvalidTopicError",
        "CorruptRecordError",
        "InvalidRecordError",
        "UnsupportedForMessageFormatError",
    ]
    return tuple(getattr(errors, name) for name in names if hasattr(errors, name))


class KafkaSink:
    """Sends events to the configured topic; one producer per process."""

    def __init__(self, config: ListenerConfig, producer_options: dict[str, Any] | None = None) -> None:
        self._config = config
        self._producer_options = producer_options or {}  # kafka-python options on top of ours (tests)
        self._producer: Any = None
        self._producer_pid: int | None = None

    def send(self, events: Sequence[Event], deadline: float) -> SendOutcome:
        """Send events in order and wait for the broker's answers until ``deadline`` (a
        ``time.monotonic()`` value). A record the broker (or the client) refuses for good is
        reported in the outcome and does not stop the ones behind it; raises
        :class:`DeliveryError` when no event got a final answer and the broker seems unreachable.
        """
        producer = self._get_producer(deadline)
        permanent = _refused_for_good()
        pending: list[Any] = []  # a future, or the reason the client refused the record at once
        for event in events:
            try:
                pending.append(
                    producer.send(
                        self._config.topic,
                        key=message_key(event.instance, event.dag_id),
                        value=serialize_event(event),
                    )
                )
            except permanent as error:  # e.g. larger than max_request_size
                pending.append(_reason(error))
            except Exception as error:  # e.g. no metadata for the topic within max_block_ms
                if not pending:
                    raise DeliveryError(
                        f"Kafka at {self._config.bootstrap_servers} did not take the events: {error}"
                    ) from error
                break
        settled = 0
        refused: dict[int, str] = {}
        for index, future in enumerate(pending):
            if isinstance(future, str):
                refused[index] = future
                settled += 1
                continue
            try:
                future.get(timeout=max(deadline - time.monotonic(), 0.001))
            except permanent as error:  # e.g. not authorized for the topic, too large for the broker
                refused[index] = _reason(error)
            except Exception as error:
                if settled == 0:
                    where = self._config.bootstrap_servers
                    raise DeliveryError(f"Kafka at {where} did not acknowledge: {error}") from error
                break
            settled += 1
        return SendOutcome(settled, refused)

    def close(self) -> None:
        if self._producer is not None and self._producer_pid == os.getpid():
            try:
                self._producer.close(timeout=1)
            except Exception:  # closing is best effort; the process may be exiting
                log.debug("airstream: error closing the Kafka producer", exc_info=True)
        self._producer = None

    def _get_producer(self, deadline: float) -> Any:
        if self._producer is not None and self._producer_pid == os.getpid():
            return self._producer
        quiet_kafka_client_logs()
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        budget_ms = max(int((deadline - time.monotonic()) * 1000), 100)
        timeout_ms = max(int(self._config.delivery_timeout * 1000), 1000)
        failures: list[BaseException] = []
        try:
            with collect_connection_failures() as failures:
                self._producer = KafkaProducer(
                    **self._config.kafka_client_options(),
                    client_id=f"airstream-listener-{self._config.instance_name}",
                    acks="all",
                    # Duplicates are recognised downstream by event_id; an idempotent producer stays
                    # broken after some broker restarts, which would cost more than it saves.
                    enable_idempotence=False,
                    retries=3,
                    # One request in flight keeps a retried batch from overtaking the next one.
                    max_in_flight_requests_per_connection=1,
                    linger_ms=0,
                    bootstrap_timeout_ms=budget_ms,
                    max_block_ms=timeout_ms,
                    request_timeout_ms=timeout_ms,
                    delivery_timeout_ms=timeout_ms * 2,
                    **self._producer_options,
                )
        except KafkaError as error:
            raise DeliveryError(explain_connection_failure(self._config, failures)) from error
        except (OSError, ValueError) as error:  # e.g. an ssl_cafile that cannot be read
            raise DeliveryError(
                f"cannot set up the Kafka client for {self._config.bootstrap_servers}: {error}; check the [airstream] "
                "ssl_cafile, ssl_certfile and ssl_keyfile files"
            ) from error
        self._producer_pid = os.getpid()
        return self._producer


def quiet_kafka_client_logs() -> None:
    """Keep kafka-python's connection errors out of Airflow's task logs, unless a deployment chose
    a level for the ``kafka`` logger itself."""
    kafka_logger = logging.getLogger("kafka")
    if kafka_logger.level == logging.NOTSET:
        kafka_logger.setLevel(logging.CRITICAL)


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"
