"""Where ``airstream stream`` keeps its state in Dagster's key-value store, and its lease.

One stream runs per *split* of the topic: all partitions (no ``--partitions``) or a static set of
them. Each split has, under ``airstream/stream/<instance>[/<partitions>]``:

* ``cursor``: its state, a :class:`~airstream.dagster_consumer.cursor.SensorCursor` (position,
  pointer to its recorded ids, totals), stored after each batch's asset events;
* ``lease``: who records the split now, until when (``{"owner", "expires", "partitions"}``).
  The active process renews it every few seconds; a process that finds a live lease of another
  owner (or of a split sharing a partition) waits as a standby and takes it once it expires, so a
  killed process is replaced within one lease period. The sensor records nothing from the topic
  while a live lease exists.

``airstream/stream/<instance>/splits`` lists the splits ever started, so the sensor (and the
streams of other splits) find their states and leases: the key-value store cannot list keys.

The store has no compare-and-set, so a lease is taken by writing it, waiting a moment and
reading it back; the loser of a simultaneous take sees the winner's owner and stays a standby.
Leases compare wall-clock times of the hosts involved: keep their clocks synchronised (NTP) to
well within the lease period.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from airstream.dagster_consumer.dagster_kvs import read_values, write_values

DEFAULT_LEASE_SECONDS = 15.0
ALL = ""  # the split of a stream without --partitions


def split_name(partitions: Iterable[int] | None) -> str:
    """``"0,1"`` for partitions 1 and 0; ``""`` (:data:`ALL`) for every partition."""
    return ",".join(str(p) for p in sorted(set(partitions))) if partitions is not None else ALL


def split_partitions(split: str) -> frozenset[int] | None:
    """The partitions of a split name (``None``: all)."""
    return frozenset(int(p) for p in split.split(",")) if split else None


def parse_partitions(text: str) -> list[int]:
    """``"0,1"`` → ``[0, 1]``; ``ValueError`` naming the option otherwise."""
    try:
        partitions = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        partitions = []
    if not partitions or partitions[0] < 0:
        raise ValueError(f"--partitions {text!r} is not a list of partition numbers; write e.g. 0,1")
    return partitions


def overlaps(a: str, b: str) -> bool:
    """Whether two splits share a partition (the whole topic overlaps every split)."""
    left, right = split_partitions(a), split_partitions(b)
    return left is None or right is None or bool(left & right)


def prefix(instance_name: str, split: str) -> str:
    return f"airstream/stream/{instance_name}" + (f"/{split}" if split else "")


def cursor_key(instance_name: str, split: str) -> str:
    return f"{prefix(instance_name, split)}/cursor"


def lease_key(instance_name: str, split: str) -> str:
    return f"{prefix(instance_name, split)}/lease"


def ids_namespace(instance_name: str, split: str) -> str:
    """The :class:`~airstream.dagster_consumer.recorded_ids.RecordedIds` namespace of a split."""
    return f"stream/{instance_name}" + (f"/{split}" if split else "")


def _splits_key(instance_name: str) -> str:
    return f"airstream/stream/{instance_name}/splits"


def registered_splits(instance: Any, instance_name: str) -> list[str]:
    """The splits of ``instance_name`` ever started (``[]`` when no stream ever ran)."""
    raw = read_values(instance, [_splits_key(instance_name)]).get(_splits_key(instance_name), "")
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []
    return sorted({str(split) for split in found}) if isinstance(found, list) else []


def register_split(instance: Any, instance_name: str, split: str) -> None:
    """Add ``split`` to the list (checked again on every lease renewal, so a write lost to a
    simultaneous start of another split is repaired within seconds)."""
    splits = registered_splits(instance, instance_name)
    if split not in splits:
        write_values(instance, {_splits_key(instance_name): json.dumps(sorted({*splits, split}))})


@dataclass(frozen=True)
class LeaseHolder:
    """A lease as stored: its owner, when it expires (unix seconds; 0 once released), its split."""

    split: str
    owner: str
    expires: float

    def live(self, now: float) -> bool:
        return self.expires > now

    def describe(self, now: float) -> str:
        where = f"partitions {self.split}" if self.split else "all partitions"
        return f"{self.owner} ({where}, lease for {max(0.0, self.expires - now):.0f} s more)"


def read_leases(instance: Any, instance_name: str, splits: Sequence[str]) -> dict[str, LeaseHolder]:
    """The stored lease of each split that has one."""
    keys = {lease_key(instance_name, split): split for split in splits}
    found: dict[str, LeaseHolder] = {}
    for key, raw in read_values(instance, keys).items():
        try:
            document = json.loads(raw)
            found[keys[key]] = LeaseHolder(keys[key], str(document["owner"]), float(document["expires"]))
        except (ValueError, KeyError, TypeError):
            continue
    return found


def live_leases(instance: Any, instance_name: str, now: float | None = None) -> list[LeaseHolder]:
    """The leases of ``instance_name``'s streams that have not expired."""
    now = time.time() if now is None else now
    splits = registered_splits(instance, instance_name)
    return [holder for holder in read_leases(instance, instance_name, splits).values() if holder.live(now)]


def new_owner() -> str:
    """An owner id naming the host and process, e.g. ``worker-3:4711:1a2b3c``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    """This process's lease on one split.

    Example::

        lease = Lease(instance, "prod", "0,1")
        while not lease.try_take():
            time.sleep(1)  # a standby
        ...
        lease.renew()      # every loop; False when another owner holds it now
        lease.release()
    """

    def __init__(
        self,
        instance: Any,
        instance_name: str,
        split: str,
        *,
        seconds: float = DEFAULT_LEASE_SECONDS,
        owner: str | None = None,
        settle: float = 0.3,
    ) -> None:
        if seconds <= 1:
            raise ValueError(f"the lease period must be more than 1 second (got {seconds!r})")
        self.instance = instance
        self.instance_name = instance_name
        self.split = split
        self.seconds = seconds
        self.owner = owner or new_owner()
        self.settle = settle
        self.expires = 0.0

    def blocker(self, now: float | None = None) -> LeaseHolder | None:
        """The live lease of another owner on this split or on one sharing a partition, if any."""
        now = time.time() if now is None else now
        splits = {*registered_splits(self.instance, self.instance_name), self.split}
        for holder in read_leases(self.instance, self.instance_name, sorted(splits)).values():
            if holder.owner != self.owner and holder.live(now) and overlaps(holder.split, self.split):
                return holder
        return None

    def try_take(self) -> bool:
        """Take the lease if no other owner holds a live one that overlaps; confirms by reading it
        back after ``settle`` seconds (two standbys taking it at once: one wins)."""
        if self.blocker() is not None:
            return False
        register_split(self.instance, self.instance_name, self.split)
        self._write(time.time() + self.seconds)
        time.sleep(self.settle)
        return self.held()

    def held(self) -> bool:
        """Whether the stored lease is this process's and live."""
        holder = read_leases(self.instance, self.instance_name, [self.split]).get(self.split)
        return holder is not None and holder.owner == self.owner and holder.live(time.time())

    def renew(self, force: bool = False) -> bool:
        """Extend the lease when a third of its period has passed (``force``: now); False, and
        nothing written, when another owner holds it now. A lease of this process that expired
        meanwhile (a long batch) is taken again the way :meth:`try_take` takes one."""
        now = time.time()
        if not force and self.expires - now > self.seconds * 2 / 3:
            return True
        holder = read_leases(self.instance, self.instance_name, [self.split]).get(self.split)
        if holder is None or holder.owner != self.owner:
            return False
        register_split(self.instance, self.instance_name, self.split)
        self._write(now + self.seconds)
        if not holder.live(now):  # a standby may be taking it right now: the read-back decides
            time.sleep(self.settle)
            return self.held()
        return True

    def release(self) -> None:
        """Give the lease up at once (the sensor or a standby takes over on its next look)."""
        if self.held():
            self._write(0.0)
        self.expires = 0.0

    def _write(self, expires: float) -> None:
        document = {"owner": self.owner, "expires": round(expires, 3), "partitions": self.split or "all"}
        write_values(self.instance, {lease_key(self.instance_name, self.split): json.dumps(document)})
        self.expires = expires
