"""The ids of the events ``airstream replay`` recorded, handed to the sensor of the same instance.

The replay records into the same Dagster instance as the sensor, but not through it: without
this, an event the replay recorded and the sensor then read from the topic (both within the
deduplication horizon) would be recorded twice. So after each stored batch the replay appends
the batch's ids to an inbox in Dagster's key-value store (``airstream/replayed_ids/<instance>/<n>``
and a count), and each sensor tick takes the entries it has not taken yet into its own recorded
ids (:class:`~airstream.dagster_consumer.recorded_ids.RecordedIds`), remembering how far it got in
its cursor. Entries it took in a committed tick are blanked later to give their space back.

One replay at a time per Airflow instance: two replays appending at once could both write the
same entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airstream.dagster_consumer.dagster_kvs import read_values, write_values
from airstream.dagster_consumer.recorded_ids import decode_ids, encode_ids


def _prefix(instance_name: str) -> str:
    return f"airstream/replayed_ids/{instance_name}"


def _count(instance: Any, instance_name: str) -> int:
    key = f"{_prefix(instance_name)}/count"
    try:
        return int(read_values(instance, [key]).get(key) or 0)
    except ValueError:
        return 0


def publish(instance: Any, instance_name: str, ids: Mapping[int, int]) -> None:
    """Append ``ids`` (digest → event hour) to the inbox of ``instance_name``'s sensor."""
    if not ids:
        return
    number = _count(instance, instance_name)
    write_values(instance, {f"{_prefix(instance_name)}/{number}": encode_ids(ids)})
    write_values(instance, {f"{_prefix(instance_name)}/count": str(number + 1)})


def take(instance: Any, instance_name: str, taken: int) -> tuple[int, dict[int, int]]:
    """The entries after the first ``taken``: how many there are now, and their ids together."""
    count = _count(instance, instance_name)
    if count <= taken:
        return taken, {}
    stored = read_values(instance, [f"{_prefix(instance_name)}/{n}" for n in range(taken, count)])
    ids: dict[int, int] = {}
    for value in stored.values():
        ids.update(decode_ids(value))
    return count, ids


def blank(instance: Any, instance_name: str, start: int, end: int) -> None:
    """Give back the space of entries ``start`` to ``end - 1`` (taken by a committed tick)."""
    write_values(instance, {f"{_prefix(instance_name)}/{n}": "" for n in range(start, end)})
