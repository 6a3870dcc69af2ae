"""The consumer's health: a line in every tick's log, and observations on an asset per Airflow
instance, ``[instance, "airstream_health"]``, that a user can find in the UI and alert on.

Every tick logs the topic lag (messages on the topic after the sensor's position, per partition
and in total) and the running totals since the sensor started (recorded, duplicates, skipped,
rejected, dead-lettered, gaps), with the last error.

An observation is recorded on the health asset:

* on every **incident**: a tick that skipped poison messages (not an event, a null value, a failed
  schema, an unknown major version), skipped events of an event type a newer minor version added,
  or found a stored Kafka offset the broker no longer had (a gap). A failed gap-repair sweep is
  retried every tick, so it is not an incident: it is the last error, shown by the next heartbeat;
* as a **heartbeat**, at most every ``health_interval`` seconds (5 minutes by default) otherwise,
  so lag is always recent: alert on ``airstream/lag_total`` above a bound, on
  ``airstream/gap_count`` > 0, or on no observation for several intervals (the sensor stopped).

The metadata is the same on both (``airstream/kind`` says which): lag, totals, the tick's gaps
(partitions, offsets, the time range handed to gap repair), poison messages, unknown types, and
``airstream/last_error``. Totals live in the sensor's cursor (a few numbers), so they count what
committed ticks did, exactly once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from dagster import AssetKey, AssetObservation, AssetSpec, MetadataValue

from airstream.dagster_consumer.consume import ConsumeOutcome
from airstream.dagster_consumer.cursor import SensorCursor
from airstream.dagster_consumer.gap_range import GapRange

HEALTH_ASSET_NAME = "airstream_health"
DEFAULT_HEALTH_INTERVAL = 300.0
TOTALS = ("recorded", "duplicates", "skipped", "rejected", "dead_lettered", "gaps")


def health_asset_key(instance_name: str) -> AssetKey:
    """``AssetKey([instance_name, "airstream_health"])``."""
    return AssetKey([instance_name, HEALTH_ASSET_NAME])


def health_asset_spec(instance_name: str) -> AssetSpec:
    """The health record's definition, so it shows in the UI before its first observation."""
    return AssetSpec(
        key=health_asset_key(instance_name),
        description=(
            f"airstream's consumer health for the Airflow instance {instance_name!r}: an observation for each "
            "sensor tick that skipped bad messages or events of unknown type or lost offsets the broker no longer "
            "had (a gap), and a heartbeat every few minutes. The metadata holds the topic lag, running totals, the "
            "gaps and the last error."
        ),
    )


def count_outcome(cursor: SensorCursor, outcome: ConsumeOutcome) -> None:
    """Add one consume step's figures to ``cursor``'s running totals (:data:`TOTALS`)."""
    cursor.count(
        recorded=outcome.recorded,
        duplicates=outcome.duplicates,
        skipped=outcome.late + outcome.foreign + outcome.superseded + len(outcome.unknown_types),
        rejected=len(outcome.rejected),
        dead_lettered=outcome.dead_lettered,
        gaps=len(outcome.gaps),
    )


def stamped(now: float, error: str) -> str:
    """``error`` after the time ``now`` (Unix seconds) in ISO 8601, as a cursor keeps its last error."""
    return f"{datetime.fromtimestamp(now, timezone.utc).isoformat(timespec='seconds')} {error}"


def tick_status_line(lag: Mapping[str, int] | None, totals: Mapping[str, int], error: str) -> str:
    """The health line of a tick's log, e.g. ``airstream: lag 12 (0: 12, 1: 0); totals: 340 recorded, ...``."""
    lag_text = f"lag {sum(lag.values())} ({', '.join(f'{p}: {n}' for p, n in lag.items())})" if lag else "lag n/a"
    totals_text = ", ".join(f"{totals.get(name, 0)} {name.replace('_', '-')}" for name in TOTALS)
    return f"airstream: {lag_text}; totals: {totals_text}" + (f"; last error: {error}" if error else "")


def health_observation(
    instance_name: str,
    outcomes: Sequence[ConsumeOutcome],
    *,
    cursor: SensorCursor,
    lag: Mapping[str, int] | None = None,
    gap: GapRange | None = None,
    errors: Sequence[str] = (),
    now: float = 0.0,
    heartbeat: float = 0.0,
) -> AssetObservation | None:
    """One observation for the tick: an incident when ``outcomes`` hold one or ``errors`` is not
    empty, a heartbeat when ``heartbeat`` seconds passed since ``cursor.health_at`` (the sensor's
    first tick starts that clock); else ``None``."""
    rejected = [message for outcome in outcomes for message in outcome.rejected]
    unknown = [message for outcome in outcomes for message in outcome.unknown_types]
    gaps = [gap for outcome in outcomes for gap in outcome.gaps]
    incident = bool(rejected or unknown or gaps or errors)
    due = heartbeat > 0 and cursor.health_at is not None and now - cursor.health_at >= heartbeat
    if not (incident or due):
        return None
    metadata: dict[str, Any] = {
        "airstream/kind": "incident" if incident else "heartbeat",
        "airstream/lag_total": sum(lag.values()) if lag else 0,
        "airstream/lag": MetadataValue.json(dict(lag or {})),
        **{f"airstream/total_{name}": cursor.totals.get(name, 0) for name in TOTALS},
        "airstream/gap_count": len(gaps),
        "airstream/gap_partitions": MetadataValue.json(sorted({gap.partition for gap in gaps})),
        "airstream/gaps": MetadataValue.json(
            [
                {
                    "partition": gap.partition,
                    "stored_offset": gap.stored_offset,
                    "resumed_offset": gap.resumed_offset,
                    "reason": gap.reason,
                }
                for gap in gaps
            ]
        ),
        "airstream/gap_time_range": MetadataValue.json(gap.as_metadata() if gap else {}),
        "airstream/poison_count": len(rejected),
        "airstream/poison": MetadataValue.json([{"where": m.where, "reason": m.reason[:500]} for m in rejected[:100]]),
        "airstream/unknown_type_count": len(unknown),
        "airstream/unknown_types": MetadataValue.json([m.where for m in unknown[:100]]),
        "airstream/last_error": cursor.error,
        "airstream/sources": ", ".join(sorted({outcome.source for outcome in outcomes})),
    }
    if incident:
        summary = f"{len(gaps)} offset gap(s), {len(rejected)} poison message(s), {len(unknown)} of unknown type"
    else:
        summary = f"heartbeat, lag {metadata['airstream/lag_total']}"
    return AssetObservation(
        asset_key=health_asset_key(instance_name), metadata=metadata, description=f"airstream: {summary}"
    )
