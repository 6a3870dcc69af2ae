"""A durable local spool: every event is written here before it is sent, and removed once the
broker has acknowledged it. Whatever a crash, a dead broker or a killed task process leaves
behind is sent by the next delivery (see :mod:`airstream.airflow_listener.delivery`).

Layout: one JSON file per event, named so that a directory listing is in emission order;
written to a temporary name, fsynced, then renamed, so a reader never sees half a file.
Files that cannot be read are moved to ``rejected/`` (never deleted) for a person to look at.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from airstream.schemas import Event, InvalidEvent, parse_event, serialize_event

log = logging.getLogger(__name__)

_SUFFIX = ".json"


@dataclass(frozen=True)
class SpooledEvent:
    path: Path
    event: Event


class Spool:
    """A directory of events waiting for delivery; safe to share between processes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.rejected_directory = directory / "rejected"
        self._lock_path = directory / ".drain.lock"
        self._unavailable_marker = directory / ".broker-unavailable"

    def put(self, event: Event) -> Path:
        """Write one event durably and return its file."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{event.event_id}{_SUFFIX}"
        final = self.directory / name
        temporary = self.directory / f".{name}.tmp"
        with open(temporary, "wb") as handle:
            handle.write(serialize_event(event))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        return final

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
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

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
            names = sorted(name for name in os.listdir(self.directory) if name.endswith(_SUFFIX))
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
