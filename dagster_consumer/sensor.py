"""The sensor that turns events from an Airflow instance into Dagster asset events."""

from __future__ import annotations

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.cursor import DEFAULT_DEDUPLICATION_WINDOW, SensorCursor
from airstream.dagster_consumer.late_events import is_late
from airstream.dagster_consumer.mapping_checks import MissingMappedTasks
from airstream.dagster_consumer.mappings import AssetMappings
from airstream.dagster_consumer.translate import AssetEvent, order_for_translation, translate
from airstream.schemas import DagRunEvent


def sensor_name(airflow_instance: AirflowInstance) -> str:
    return f"{airflow_instance.name}__airflow_event_sensor"


def build_airflow_event_sensor(
    *,
    airflow_instance: AirflowInstance,
    mappings: AssetMappings,
    minimum_interval_seconds: int = 1,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    deduplication_window: int = DEFAULT_DEDUPLICATION_WINDOW,
) -> SensorDefinition:
    """A sensor that reads ``airflow_instance``'s events and records them on assets.

    Each tick reads from the position in the sensor's cursor, translates the events, and
    returns them with the new position; Dagster stores both, so a restart resumes exactly.
    Events from another instance name on the same topic are left to that instance's sensor.
    A ``running`` event whose task try or DAG run already ended (per the cursor's window of seen
    event ids) is not recorded, so a finished task never looks unfinished; the tick's log counts
    it as late. A task mapping that names a task a finished DAG run does not list is reported
    once per process, as a warning in the sensor's log.
    """
    missing_tasks = MissingMappedTasks()  # lives as long as the loaded definitions: once per process

    @sensor(
        name=sensor_name(airflow_instance),
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            f"Records the Airflow instance {airflow_instance.name!r}'s task, DAG-run and asset events "
            f"from {airflow_instance.event_source.describe()} as asset events."
        ),
    )
    def airflow_event_sensor(context: SensorEvaluationContext) -> SensorResult:
        cursor = SensorCursor.parse(context.cursor, window=deduplication_window)
        batch = airflow_instance.event_source.read(cursor.position)
        for rejected in batch.rejected:
            context.log.error(f"airstream: skipped the message at {rejected.where}: {rejected.reason}")

        asset_events: list[AssetEvent] = []
        recorded = duplicates = late = foreign = 0
        for event in order_for_translation(batch.events):
            if event.instance != airflow_instance.name:
                foreign += 1
                continue
            if not cursor.seen.add(event.event_id):
                duplicates += 1
                continue
            if is_late(event, cursor.seen):
                late += 1
                continue
            recorded += 1
            if isinstance(event, DagRunEvent):
                for warning in missing_tasks.check(event, mappings):
                    context.log.warning(warning)
            asset_events.extend(translate(event, mappings=mappings, webserver_url=airflow_instance.webserver_url))
        cursor.position = batch.position
        context.log.info(
            f"airstream: {recorded} event(s) recorded as {len(asset_events)} asset event(s); "
            f"{duplicates} duplicate(s), {late} late, {foreign} from other instances, "
            f"{len(batch.rejected)} rejected; {'caught up' if batch.caught_up else 'more to read'}"
        )
        return SensorResult(asset_events=asset_events, cursor=cursor.serialize())

    return airflow_event_sensor
