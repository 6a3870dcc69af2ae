"""Assembling the definitions that observe one Airflow instance: DAG assets, peered specs, the sensor.

Both entry points end here: :func:`~airstream.dagster_consumer.build_defs_from_airflow_instance`
(events only, or with a peering snapshot) and the state-backed peering loaders
(:mod:`airstream.dagster_consumer.peering`), so the two build the same definitions.
"""

from __future__ import annotations

from dagster import DefaultSensorStatus, Definitions

from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.asset_keys import AirflowAssetKeys
from airstream.dagster_consumer.cursor import DEFAULT_DEDUPLICATION_WINDOW
from airstream.dagster_consumer.health import health_asset_spec
from airstream.dagster_consumer.mappings import AssetMappings
from airstream.dagster_consumer.peering.filter import AirflowFilter
from airstream.dagster_consumer.peering.snapshot import PeeringSnapshot
from airstream.dagster_consumer.peering.specs import dag_asset_specs
from airstream.dagster_consumer.rest.records import AirflowRestApi
from airstream.dagster_consumer.sensor import build_airflow_event_sensor


def build_observation_defs(
    *,
    airflow_instance: AirflowInstance,
    defs: Definitions | None = None,
    airflow_asset_keys: AirflowAssetKeys | None = None,
    snapshot: PeeringSnapshot | None = None,
    airflow_filter: AirflowFilter | None = None,
    sensor_minimum_interval_seconds: int = 1,
    default_sensor_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    deduplication_window: int = DEFAULT_DEDUPLICATION_WINDOW,
    rest_api: AirflowRestApi | None = None,
) -> Definitions:
    """``defs`` plus the DAG assets (and, with a ``snapshot``, the peered DAGs and Airflow assets) and the sensor.

    Example::

        build_observation_defs(airflow_instance=instance, defs=Definitions(assets=mapped), snapshot=snapshot)
    """
    defs = defs or Definitions()
    mappings = AssetMappings.from_definitions(defs, airflow_asset_keys or AirflowAssetKeys())
    defined_keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    specs = dag_asset_specs(
        instance_name=airflow_instance.name,
        mappings=mappings,
        snapshot=snapshot,
        airflow_filter=airflow_filter,
        webserver_url=airflow_instance.webserver_url,
        defined_keys=defined_keys,
    )
    sensor = build_airflow_event_sensor(
        airflow_instance=airflow_instance,
        mappings=mappings,
        minimum_interval_seconds=sensor_minimum_interval_seconds,
        default_status=default_sensor_status,
        deduplication_window=deduplication_window,
        rest_api=rest_api,
    )
    health = [health_asset_spec(airflow_instance.name)]
    return Definitions.merge(defs, Definitions(assets=[*specs, *health], sensors=[sensor]))
