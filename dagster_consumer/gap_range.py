"""The time range of events lost to the topic, for the REST gap repair.

When stored offsets are out of the broker's range (retention passed a paused sensor, the topic
was recreated), what lay between is lost to the topic. Offsets say nothing to Airflow's REST API,
times do: the gap runs from the newest event recorded on that partition before it (kept per
partition in the cursor, ``SensorCursor.times``) to the first event read after it (or now, if
none came yet). A REST sweep from the start of that range (less its ``overlap``) finds the DAG runs
that ended in it; deduplication drops what was recorded already.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from airstream.dagster_consumer.sources.base import OffsetGap


@dataclass(frozen=True)
class GapRange:
    """The gaps of one read and the time range they cover. ``since`` is ``None`` when no event
    was recorded from those partitions before (the REST source's own starting point applies)."""

    gaps: tuple[OffsetGap, ...]
    since: datetime | None
    until: datetime

    def describe_times(self) -> str:
        start = _iso(self.since) if self.since else "(no event recorded before it)"
        return f"events from {start} to {_iso(self.until)}"

    def describe(self) -> str:
        return "; ".join(gap.describe() for gap in self.gaps) + f"; lost time range: {self.describe_times()}"

    def as_metadata(self) -> dict[str, str | None]:
        return {"since": _iso(self.since) if self.since else None, "until": _iso(self.until)}


def gap_range(gaps: Sequence[OffsetGap], times: Mapping[str, int], *, now: float) -> GapRange:
    """The range of ``gaps`` given ``times`` (partition → unix seconds of the newest event recorded
    before this read; partitions never recorded fall back to the oldest of the others)."""
    known = [times[str(gap.partition)] for gap in gaps if str(gap.partition) in times]
    if len(known) < len(gaps) and times:
        known.append(min(times.values()))
    since = datetime.fromtimestamp(min(known), timezone.utc) if known else None
    ends = [gap.first_event_at for gap in gaps]
    until = (
        max(_aware(end) for end in ends if end is not None)
        if ends and all(end is not None for end in ends)
        else datetime.fromtimestamp(now, timezone.utc)
    )
    return GapRange(gaps=tuple(gaps), since=since, until=until)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _iso(value: datetime) -> str:
    return _aware(value).astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
