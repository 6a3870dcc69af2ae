"""The consumer's health record: an asset per Airflow instance, ``[instance, "airstream_health"]``,
observed whenever a tick met something a person should know about.

A tick that skipped poison messages (not an event, a null value, a failed schema, an unknown
major version), skipped events of an event type a newer minor version added, or found a stored
Kafka offset the broker no longer had (a gap) records one observation on it, with the counts and
the details as metadata. Nothing is recorded for a quiet tick, so the asset's event log is the
list of incidents: alert on new observations, or on the metadata (``airstream/gap_count`` > 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagster import AssetKey, AssetObservation, AssetSpec, MetadataValue

from airstream.dagster_consumer.consume import ConsumeOutcome

HEALTH_ASSET_NAME = "airstream_health"


def health_asset_key(instance_name: str) -> AssetKey:
    """``AssetKey([instance_name, "airstream_health"])``."""
    return AssetKey([instance_name, HEALTH_ASSET_NAME])


def health_asset_spec(instance_name: str) -> AssetSpec:
    """The health record's definition, so it shows in the UI before its first observation."""
    return AssetSpec(
        key=health_asset_key(instance_name),
        description=(
            f"airstream's consumer health for the Airflow instance {instance_name!r}: each observation is a sensor "
            "tick that skipped bad messages or events of unknown type, or lost offsets the broker no longer had "
            "(a gap). See the metadata for counts, partitions and offsets, and the last error."
        ),
    )


def health_observation(instance_name: str, outcomes: Sequence[ConsumeOutcome]) -> AssetObservation | None:
    """One observation summing up ``outcomes`` (the consume steps of a tick), or ``None`` if quiet."""
    rejected = [message for outcome in outcomes for message in outcome.rejected]
    unknown = [message for outcome in outcomes for message in outcome.unknown_types]
    gaps = [gap for outcome in outcomes for gap in outcome.gaps]
    if not (rejected or unknown or gaps):
        return None
    errors = [gap.describe() for gap in gaps] + [f"{message.where}: {message.reason}" for message in rejected]
    metadata: dict[str, Any] = {
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
        "airstream/poison_count": len(rejected),
        "airstream/poison": MetadataValue.json([{"where": m.where, "reason": m.reason[:500]} for m in rejected[:100]]),
        "airstream/unknown_type_count": len(unknown),
        "airstream/unknown_types": MetadataValue.json([m.where for m in unknown[:100]]),
        "airstream/last_error": errors[-1] if errors else "",
        "airstream/sources": ", ".join(sorted({outcome.source for outcome in outcomes})),
    }
    summary = f"{len(gaps)} offset gap(s), {len(rejected)} poison message(s), {len(unknown)} of unknown type"
    return AssetObservation(
        asset_key=health_asset_key(instance_name), metadata=metadata, description=f"airstream: {summary}"
    )
