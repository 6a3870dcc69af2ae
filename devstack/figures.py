"""The figures a fault test states: events sent, recorded in Dagster, lost and duplicated.

With ``dag_asset_history="all"``, an event the sensor records leaves exactly one asset event on
its DAG's asset (``[instance, "dag", dag_id]``: a materialization for a DAG run's success, an
observation for everything else), carrying the event's id in ``airstream/event_id``; counting
those ids per event tells what Dagster holds.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from devstack.dagster import recorded_asset_events, tick_and_store

__all__ = ["Figures", "SensorDriver", "count_figures", "etl_observation_defs", "load_successes", "recorded_event_ids"]

EVENT_ID = "airstream/event_id"


@dataclass(frozen=True)
class Figures:
    """``sent`` distinct events, ``recorded`` asset records of them, the ``lost`` ids (sent, not
    recorded) and the ``duplicated`` ids (recorded more than once), and records of ids never sent."""

    sent: int
    recorded: int
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected)

    def __str__(self) -> str:
        text = f"sent {self.sent}, recorded {self.recorded}, lost {len(self.lost)}, duplicated {len(self.duplicated)}"
        if self.unexpected:
            text += f", never sent but recorded {len(self.unexpected)}"
        if self.lost:
            text += f"; lost ids (first 5): {self.lost[:5]}"
        if self.duplicated:
            text += f"; duplicated ids (first 5): {self.duplicated[:5]}"
        return text


def recorded_event_ids(instance: Any, instance_name: str) -> list[str]:
    """The event id of every asset record on the instance's DAG assets, once per record."""
    prefix = f"{instance_name}/dag/"
    return [
        str(event.metadata[EVENT_ID])
        for event in recorded_asset_events(instance)
        if event.asset_key.startswith(prefix) and EVENT_ID in event.metadata
    ]


def count_figures(sent_ids: Iterable[str], recorded_ids: Iterable[str]) -> Figures:
    """Compare the ids sent (duplicates in it count once) with the ids recorded (each record counts)."""
    sent = set(sent_ids)
    recorded = Counter(recorded_ids)
    return Figures(
        sent=len(sent),
        recorded=sum(recorded.values()),
        lost=sorted(sent - set(recorded)),
        duplicated=sorted(event_id for event_id, count in recorded.items() if count > 1),
        unexpected=sorted(set(recorded) - sent),
    )


class SensorDriver:
    """Ticks a sensor against a Dagster instance as the daemon does (asset events stored, then
    the cursor kept), so a test can tick at the moments it chooses."""

    def __init__(self, instance: Any, defs: Any, sensor_name: str) -> None:
        self.instance = instance
        self.defs = defs
        self.sensor_name = sensor_name
        self.instance_name = sensor_name.split("__")[0]
        self.cursor: str | None = None

    def tick(self) -> int:
        """One tick; returns how many asset events it stored."""
        sensor = self.defs.resolve_sensor_def(self.sensor_name)
        self.cursor, stored = tick_and_store(sensor, self.instance, self.cursor, definitions=self.defs)
        return stored

    def tick_until_quiet(self, max_ticks: int = 20) -> int:
        """Tick until a tick stores nothing (the topic is read to its end); returns the ticks made."""
        for made in range(1, max_ticks + 1):
            if not self.tick():
                return made
        raise AssertionError(f"the sensor still stored events after {max_ticks} ticks")

    def recorded_ids(self) -> list[str]:
        """The event ids recorded on the instance's DAG assets, once per record."""
        return recorded_event_ids(self.instance, self.instance_name)


def etl_observation_defs(instance_name: str, bootstrap_servers: str, topic: str, **source_options: Any) -> Any:
    """The definitions the fault tests observe ``instance_name`` with: its DAG ``etl``'s tasks
    ``extract`` and ``load`` mapped to the assets ``extracted`` and ``loaded``, and every event kept
    on the DAG asset (``dag_asset_history="all"``), which is what the figures count."""
    from dagster import AssetSpec, Definitions

    from airstream.dagster_consumer import (
        AirflowInstance,
        KafkaEventSource,
        assets_with_task_mappings,
        build_defs_from_airflow_instance,
    )

    return build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(
            name=instance_name,
            event_source=KafkaEventSource(
                bootstrap_servers=bootstrap_servers, topic=topic, connect_timeout_seconds=5, **source_options
            ),
        ),
        defs=Definitions(
            assets=assets_with_task_mappings(
                dag_id="etl", task_mappings={"extract": [AssetSpec("extracted")], "load": [AssetSpec("loaded")]}
            )
        ),
        dag_asset_history="all",
    )


def load_successes(instance_name: str, count: int) -> list[Any]:
    """``count`` distinct events: the task ``load`` of DAG ``etl`` succeeding in runs ``manual__0``..."""
    from airstream.schemas import EventType, TaskInstanceEvent

    return [
        TaskInstanceEvent.new(
            instance=instance_name,
            event_type=EventType.TASK_INSTANCE_SUCCESS,
            state="success",
            dag_id="etl",
            run_id=f"manual__{number}",
            task_id="load",
            try_number=1,
            producer="airstream/faults",
        )
        for number in range(count)
    ]
