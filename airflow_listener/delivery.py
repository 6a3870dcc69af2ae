"""Delivery without loss and without blocking Airflow.

Every event is first written to the durable :class:`~airstream.airflow_listener.spool.Spool`; then the
spool is drained to Kafka, oldest first, under a lock shared by all processes on the machine.

* In a task process the drain runs inline, bounded by ``delivery_timeout`` (well inside the
  20 s Airflow grants a task process after its terminal state).
* In the scheduler and the api-server (where hooks run inside the scheduling loop or a request)
  the drain runs on a background thread, which also retries a non-empty spool every
  ``retry_backoff`` seconds.
* After a failure, every process skips the broker for ``retry_backoff`` seconds and only
  spools, so an outage never slows task after task. The back-off is checked again once the drain
  lock is held (the holder we waited for may just have found the broker dead), and only an
  acknowledgement from the broker lifts it.
* A record the broker refuses for good goes to the spool's ``dead-letter/`` folder and the events
  behind it go on; when the spool is full a new event is logged at ERROR and counted instead.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence

from airstream.airflow_listener.config import ListenerConfig
from airstream.airflow_listener.kafka_sink import DeliveryError, KafkaSink
from airstream.airflow_listener.spool import Spool, SpoolFull
from airstream.schemas import Event

log = logging.getLogger(__name__)

_BATCH = 500


class Publisher:
    """Spools each event, then delivers the spool inline or in the background."""

    def __init__(self, config: ListenerConfig, sink: KafkaSink | None = None, *, spool_only: bool = False) -> None:
        self.config = config
        self.spool_only = spool_only
        self.spool = Spool(config.spool_dir, max_events=config.max_spool_events)
        self._sink = sink or KafkaSink(config)
        self._worker: _BackgroundDrainer | None = None

    def publish(self, event: Event, *, inline: bool) -> None:
        """Record ``event``; deliver now (``inline``) or hand delivery to the background thread."""
        self.spool_event(event)
        if self.spool_only:
            return
        if inline:
            self.drain(timeout=self.config.delivery_timeout)
        else:
            self._background().wake()

    def publish_many(self, events: Sequence[Event], *, inline: bool) -> None:
        """Record several events, in order. Outside ``inline`` use (the scheduler, the api-server)
        the background thread writes them to the spool too, so a DAG of a thousand tasks never
        holds the scheduling loop for a thousand fsyncs."""
        if not events:
            return
        if inline or self.spool_only:
            for event in events:
                self.spool_event(event)
            if not self.spool_only:
                self.drain(timeout=self.config.delivery_timeout)
        else:
            self._background().submit(events)

    def spool_event(self, event: Event) -> bool:
        """Write ``event`` to the spool; when it is full, log an ERROR and count the event in
        ``.dropped`` instead (see :mod:`airstream.airflow_listener.config`)."""
        try:
            self.spool.put(event)
        except SpoolFull as full:
            count = self.spool.record_dropped(event, str(full))
            log.error(
                "airstream: %s: %s event %s (DAG %s, run %s) is NOT recorded; %d event(s) not spooled so far "
                "(see %s and `airstream-spool status`)",
                full,
                event.event_type.value,
                event.event_id,
                event.dag_id,
                event.run_id,
                count,
                self.spool.dropped_file,
            )
            return False
        return True

    def drain(self, timeout: float, *, ignore_backoff: bool = False) -> int:
        """Send spooled events until the spool is empty or ``timeout`` seconds pass.

        Returns how many were delivered. Never raises for broker trouble: what is not
        delivered stays in the spool.
        """
        if not ignore_backoff and self.spool.broker_failed_within(self.config.retry_backoff):
            return 0
        deadline = time.monotonic() + timeout
        delivered = 0
        with self.spool.drain_lock(timeout) as locked:
            if not locked:
                return 0  # another process is draining and will take our events too
            # The lock holder we waited for may just have found the broker dead: do not try again.
            if not ignore_backoff and self.spool.broker_failed_within(self.config.retry_backoff):
                return 0
            self.spool.remove_stale_temporary_files()
            while time.monotonic() < deadline:
                batch = self.spool.pending(limit=_BATCH)
                if not batch:
                    break
                try:
                    outcome = self._sink.send([entry.event for entry in batch], deadline)
                except DeliveryError as error:
                    self.spool.mark_broker_unavailable()
                    log.warning(
                        "airstream: %s; %d event(s) stay spooled in %s and will be retried",
                        error,
                        self.spool.count(),
                        self.spool.directory,
                    )
                    return delivered
                for index, reason in outcome.refused.items():
                    self.spool.dead_letter(batch[index], reason)
                settled = batch[: outcome.settled]
                self.spool.remove_many([entry.path for i, entry in enumerate(settled) if i not in outcome.refused])
                acknowledged = outcome.acknowledged
                if acknowledged:
                    # Only an acknowledgement proves the broker is back; a drain that found nothing
                    # to send, or sent nothing, leaves another process's back-off in place.
                    self.spool.mark_broker_available()
                delivered += acknowledged
                if outcome.settled < len(batch):
                    break
        return delivered

    def close(self) -> None:
        """Close this process's Kafka producer (a later publish opens a new one)."""
        self._sink.close()

    def _background(self) -> _BackgroundDrainer:
        if self._worker is None or not self._worker.belongs_to_this_process():
            self._worker = _BackgroundDrainer(self)
        return self._worker


class _BackgroundDrainer:
    """A daemon thread that drains the spool when woken, and retries it periodically."""

    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self._pid = os.getpid()
        self._submitted: queue.SimpleQueue[Sequence[Event]] = queue.SimpleQueue()
        self._wakeup = threading.Event()
        self._thread = threading.Thread(target=self._run, name="airstream-delivery", daemon=True)
        self._thread.start()
        # A short-lived process (``airflow dags test``) gets one last bounded try at exit.
        atexit.register(self._drain_at_exit)

    def belongs_to_this_process(self) -> bool:
        return self._pid == os.getpid() and self._thread.is_alive()

    def wake(self) -> None:
        self._wakeup.set()

    def submit(self, events: Sequence[Event]) -> None:
        """Spool ``events`` on this thread, then deliver them."""
        self._submitted.put(events)
        self._wakeup.set()

    def _spool_submitted(self) -> None:
        while True:
            try:
                events = self._submitted.get_nowait()
            except queue.Empty:
                return
            for event in events:
                self._publisher.spool_event(event)

    def _run(self) -> None:
        config = self._publisher.config
        while True:
            self._wakeup.wait(timeout=config.retry_backoff)
            self._wakeup.clear()
            try:
                self._spool_submitted()
                if self._publisher.spool.count():
                    self._publisher.drain(timeout=config.delivery_timeout)
            except Exception:
                log.exception("airstream: background delivery failed; events stay spooled")

    def _drain_at_exit(self) -> None:
        if os.getpid() != self._pid:
            return
        try:
            self._spool_submitted()
            self._publisher.drain(timeout=self._publisher.config.delivery_timeout)
        except Exception:
            log.exception("airstream: delivery at exit failed; events stay spooled")
