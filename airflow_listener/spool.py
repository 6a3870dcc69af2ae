"""A durable local spool: every event is written here before it is sent, and removed once the
broker has acknowledged it. Whatever a crash, a dead broker or a killed task process leaves
behind is sent by the next delivery (see :mod:`airstream.airflow_listener.delivery`).

Layout: one JSON file per event, named so that a directory listing is in emission order;
written to a temporary name (``.NAME.tmp``), fsynced, renamed, and the directory fsynced, so a
reader never sees half a file and a written event survives a crash of the process or the host.
Removals after an acknowledgement are fsynced once per batch (a removal lost to a crash only
sends an event again, which the consumer drops as a duplicate). Temporary files a crash left
behind are never sent, and are deleted once they are :data:`STALE_TEMPORARY_SECONDS` old (an
event is written in well under a second, so a file that old is not being written).
Files that cannot be read are moved to ``rejected/`` (never deleted) for a person to look at.
Events the broker refuses for good (too large, topic not authorized or invalid) are moved to
``dead-letter/``, each with a ``NAME.reason.txt`` beside it, so the events behind them go on.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airstream.schemas import Event, InvalidEvent, parse_event, serialize_event

log = logging.getLogger(__name__)

_SUFFIX = ".json"
_TEMPORARY_SUFFIX = ".tmp"

STALE_TEMPORARY_SECONDS = 600.0
_RECOUNT_EVERY = 100  # events a process writes between two counts of the directory


class SpoolFull(RuntimeError):
    """The spool holds ``max_events`` events; the event was not written."""


@dataclass(frozen=True)
class SpooledEvent:
    path: Path
    event: Event


class Spool:
    """A directory of events waiting for delivery; safe to share between processes."""

    def __init__(self, directory: Path, max_events: int | None = None) -> None:
        self.directory = directory
        self.max_events = max_events
        self.dropped_file = directory / ".dropped"
        self._counted: int | None = None  # events found at the last count of the directory
        self._written_since_count = 0
        self.rejected_directory = directory / "rejected"
        self.dead_letter_directory = directory / "dead-letter"
        self._lock_path = directory / ".drain.lock"
        self._unavailable_marker = directory / ".broker-unavailable"

    def put(self, event: Event) -> Path:
        """Write one event durably and return its file; :class:`SpoolFull` at ``max_events``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._full():
            raise SpoolFull(f"the spool {self.directory} holds {self._counted} events (max_spool_events)")
        name = f"{time.time_ns():020d}-{os.getpid()}-{event.event_id}{_SUFFIX}"
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(serialize_event(event))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        _fsync_directory(self.directory)
        self._written_since_count += 1
        return final

    def _full(self) -> bool:
        if self.max_events is None:
            return False
        estimate = (self._counted or 0) + self._written_since_count
        if self._counted is None or self._written_since_count >= _RECOUNT_EVERY or estimate >= self.max_events:
            self._counted, self._written_since_count = self.count(), 0
            estimate = self._counted
        return estimate >= self.max_events

    def record_dropped(self, event: Event, reason: str) -> int:
        """Count an event that could not be spooled in ``.dropped`` (shared by all processes);
        returns the count so far."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.dropped_file, "a+", encoding="utf-8") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            handle.seek(0)
            try:
                count = int(json.loads(handle.read() or "{}").get("count", 0))
            except (ValueError, AttributeError):
                count = 0  # a damaged counter restarts rather than blocking the count
            record = {
                "count": count + 1,
                "last_reason": reason,
                "last_event": f"{event.event_type.value} {event.event_id} (DAG {event.dag_id})",
                "last_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            }
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(record))
            handle.flush()
            os.fsync(handle.fileno())
        return count + 1

    def dropped(self) -> dict[str, Any] | None:
        """What ``.dropped`` holds (``count``, ``last_reason``, ``last_event``, ``last_at``), if anything."""
        try:
            value = json.loads(self.dropped_file.read_text(encoding="utf-8") or "null")
        except FileNotFoundError:
            return None
        except ValueError:
            return {"count": "?", "last_reason": f"{self.dropped_file} is damaged"}
        return value if isinstance(value, dict) else None

    def pending(self, limit: int | None = None) -> list[SpooledEvent]:
        """The oldest waiting events first; unreadable files are moved aside to ``rejected/``."""
        entries: list[SpooledEvent] = []
        for path in self._paths():
            try:
                entries.append(SpooledEvent(path, parse_event(path.read_bytes())))
            except FileNotFoundError:
                continue  # another process delivered it meanwhile
            except InvalidEvent as error:
                self._reject(path, error)
            if limit is not None and len(entries) >= limit:
                break
        return entries

    def count(self) -> int:
        return len(self._paths())

    def remove(self, path: Path) -> None:
        self.remove_many([path])

    def remove_many(self, paths: Sequence[Path]) -> None:
        """Remove delivered events, with one directory fsync for all of them."""
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if paths:
            _fsync_directory(self.directory)

    def remove_stale_temporary_files(self, older_than: float = STALE_TEMPORARY_SECONDS) -> list[Path]:
        """Delete the temporary files a crashed writer left, once they are ``older_than`` seconds
        old (never one being written). Returns what was deleted."""
        try:
            names = [name for name in os.listdir(self.directory) if name.endswith(_TEMPORARY_SUFFIX)]
        except FileNotFoundError:
            return []
        now = time.time()
        removed: list[Path] = []
        for name in names:
            path = self.directory / name
            try:
                if now - path.stat().st_mtime < older_than:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue
            removed.append(path)
        if removed:
            _fsync_directory(self.directory)
            log.warning("airstream: removed %d temporary file(s) a crash left in %s", len(removed), self.directory)
        return removed

    def dead_letter(self, entry: SpooledEvent, reason: str) -> Path:
        """Move an event the broker refuses for good to ``dead-letter/``, the reason beside it."""
        self.dead_letter_directory.mkdir(parents=True, exist_ok=True)
        target = self.dead_letter_directory / entry.path.name
        reason_file = target.with_name(target.name.removesuffix(_SUFFIX) + ".reason.txt")
        event = entry.event
        with open(reason_file, "w", encoding="utf-8") as handle:
            handle.write(f"{reason}\nevent {event.event_id} {event.event_type.value} dag {event.dag_id}\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.replace(entry.path, target)
        _fsync_directory(self.dead_letter_directory)
        _fsync_directory(self.directory)
        log.error(
            "airstream: the broker refuses event %s (%s, DAG %s) for good: %s; moved to %s",
            event.event_id,
            event.event_type.value,
            event.dag_id,
            reason,
            self.dead_letter_directory,
        )
        return target

    def dead_letter_count(self) -> int:
        try:
            return sum(1 for name in os.listdir(self.dead_letter_directory) if name.endswith(_SUFFIX))
        except FileNotFoundError:
            return 0

    @contextlib.contextmanager
    def drain_lock(self, timeout: float) -> Iterator[bool]:
        """Hold the spool's drain lock (yields False if it could not be had within ``timeout``).

        One drainer at a time keeps two processes from sending the same file twice.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as handle:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        yield False
                        return
                    time.sleep(0.01)
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def mark_broker_unavailable(self) -> None:
        """Remember, for every process on this machine, that the broker just failed."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._unavailable_marker.touch()

    def mark_broker_available(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._unavailable_marker.unlink()

    def broker_failed_within(self, seconds: float) -> bool:
        try:
            return time.time() - self._unavailable_marker.stat().st_mtime < seconds
        except FileNotFoundError:
            return False

    def _paths(self) -> list[Path]:
        try:
            names = sorted(
                name for name in os.listdir(self.directory) if name.endswith(_SUFFIX) and not name.startswith(".")
            )
        except FileNotFoundError:
            return []
        return [self.directory / name for name in names]

    def _reject(self, path: Path, error: Exception) -> None:
        self.rejected_directory.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, self.rejected_directory / path.name)
            log.error(
                "airstream: spooled event %s is unreadable (%s); moved to %s",
                path.name,
                error,
                self.rejected_directory,
            )


def _fsync_directory(directory: Path) -> None:
    """Make the creations, renames and removals in ``directory`` durable."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
