"""Building Dagster definitions for an observed Airflow instance."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import AssetSpec, DefaultSensorStatus, Definitions

from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.asset_keys import AirflowAssetKeyFn, AirflowAssetKeys, KeyLike
from airstream.dagster_consumer.cursor import DEFAULT_DEDUPLICATION_WINDOW
from airstream.dagster_consumer.mappings import AssetMappings, dag_asset_key
from airstream.dagster_consumer.sensor import build_airflow_event_sensor


def build_defs_from_airflow_instance(
    *,
    airflow_instance: AirflowInstance,
    defs: Definitions | None = None,
    sensor_minimum_interval_seconds: int = 1,
    default_sensor_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    deduplication_window: int = DEFAULT_DEDUPLICATION_WINDOW,
    airflow_asset_keys: Mapping[str, KeyLike] | None = None,
    airflow_asset_key_fn: AirflowAssetKeyFn | None = None,
) -> Definitions:
    """Definitions that observe ``airflow_instance`` through its events.

    Adds, to ``defs``: an asset for each DAG that ``defs`` maps assets to (DAGs seen only in
    events are recorded under the same key form, ``[instance, "dag", dag_id]``), and the sensor
    that records task and DAG-run events on the DAG assets and the mapped assets, and Airflow
    asset updates on the Dagster assets their URIs name.

    Args:
        airflow_asset_keys: Airflow asset URI → Dagster asset key, for the Airflow assets you
            name yourself (values: ``AssetKey``, a string, or a list of strings).
        airflow_asset_key_fn: a function from a URI to a key (or ``None``), for whole families of
            URIs. URIs that neither names get :func:`airflow_asset_key`'s default key, e.g.
            ``s3://warehouse/orders.parquet`` → ``["s3", "warehouse", "orders_parquet"]``.

    Example::

        defs = build_defs_from_airflow_instance(
            airflow_instance=AirflowInstance(
                name="prod",
                event_source=KafkaEventSource(bootstrap_servers="localhost:9092", topic="airflow.events"),
            ),
            defs=Definitions(
                assets=assets_with_task_mappings(
                    dag_id="etl", task_mappings={"load": [AssetSpec("warehouse_table")]}
                )
            ),
            airflow_asset_keys={"s3://warehouse/orders.parquet": AssetKey(["warehouse", "orders"])},
        )
    """
    defs = defs or Definitions()
    mappings = AssetMappings.from_definitions(
        defs, AirflowAssetKeys(keys=airflow_asset_keys or {}, key_fn=airflow_asset_key_fn)
    )
    dag_assets = [
        AssetSpec(
            key=dag_asset_key(airflow_instance.name, dag_id),
            description=f"The Airflow DAG {dag_id!r} on instance {airflow_instance.name!r}.",
            kinds={"airflow"},
            metadata={"airflow/dag_id": dag_id, "airflow/instance": airflow_instance.name},
        )
        for dag_id in sorted(mappings.dag_ids)
    ]
    sensor = build_airflow_event_sensor(
        airflow_instance=airflow_instance,
        mappings=mappings,
        minimum_interval_seconds=sensor_minimum_interval_seconds,
        default_status=default_sensor_status,
        deduplication_window=deduplication_window,
    )
    return Definitions.merge(defs, Definitions(assets=dag_assets, sensors=[sensor]))
