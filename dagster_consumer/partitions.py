"""Which partition of a time-partitioned asset an Airflow run produced.

A run's logical date is the start of the data interval it processes, so the partition is the one
whose time window contains the logical date: a daily run with logical date 2025-01-01T00:00Z
materializes partition ``2025-01-01``. Dagster's Airlift does the same (it converts the logical
date's timestamp with ``get_partition_key_for_timestamp``); unlike Airlift, airstream never
raises here: a logical date the partitions definition cannot place is returned as a
:class:`NoPartition` with the reason, and recorded as an observation.

The calls into ``TimeWindowPartitionsDefinition`` beyond ``start`` and ``end`` are methods of a
public class that the API docs do not list (``get_partition_key_for_timestamp``,
``time_window_for_partition_key``); they stay in this module so a Dagster upgrade breaks one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from dagster import TimeWindowPartitionsDefinition


@dataclass(frozen=True)
class NoPartition:
    """The logical date falls outside the partitions definition; ``reason`` says how."""

    reason: str


def partition_for_logical_date(
    partitions_def: TimeWindowPartitionsDefinition, logical_date: datetime | None
) -> str | NoPartition:
    """The key of the partition whose window contains ``logical_date``, or why there is none.

    A naive ``logical_date`` is taken as UTC (Airflow's logical dates are UTC). The current time
    is not a bound: a run for today's partition records it although Dagster lists the partition
    only once its window has ended (as Airlift does).

    Example::

        daily = DailyPartitionsDefinition(start_date="2025-01-01")
        partition_for_logical_date(daily, datetime(2025, 1, 3, tzinfo=timezone.utc))   # "2025-01-03"
        partition_for_logical_date(daily, datetime(2024, 6, 1, tzinfo=timezone.utc))   # NoPartition(...)
        partition_for_logical_date(daily, None)                                         # NoPartition(...)
    """
    if logical_date is None:
        return NoPartition(
            "the Airflow run has no logical date (Airflow 3 runs triggered without one), so no partition can be chosen"
        )
    if logical_date.tzinfo is None:
        logical_date = logical_date.replace(tzinfo=timezone.utc)
    when = logical_date.isoformat()
    try:
        key = partitions_def.get_partition_key_for_timestamp(logical_date.timestamp())
        window = partitions_def.time_window_for_partition_key(key)
    except Exception as error:  # an exotic definition must not stop the sensor
        return NoPartition(f"Dagster could not place the logical date {when} in the partitions definition: {error}")
    if window.start < partitions_def.start:
        return NoPartition(
            f"the logical date {when} is before the first partition (its window would start "
            f"{window.start.isoformat()}, the partitions definition starts {partitions_def.start.isoformat()})"
        )
    end = partitions_def.end
    if end is not None and window.end > end:
        return NoPartition(
            f"the logical date {when} is after the last partition (the partitions definition ends {end.isoformat()})"
        )
    if not window.start <= logical_date < window.end:
        return NoPartition(f"the logical date {when} falls in a window the partitions definition excludes")
    return key
