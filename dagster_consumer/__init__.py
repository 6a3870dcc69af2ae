"""The Dagster side of airstream: observe an Airflow instance through its lifecycle events.

Example::

    from dagster import AssetSpec, Definitions
    from airstream.dagster_consumer import (
        AirflowInstance, KafkaEventSource, assets_with_task_mappings, build_defs_from_airflow_instance,
    )

    defs = build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(
            name="prod",
            event_source=KafkaEventSource(bootstrap_servers="localhost:9092", topic="airflow.events"),
        ),
        defs=Definitions(
            assets=[*assets_with_task_mappings(dag_id="etl", task_mappings={"load": [AssetSpec("warehouse_table")]})]
        ),
    )

This package never imports Airflow.
"""

from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.asset_keys import AirflowAssetKeyFn, AirflowAssetKeys, airflow_asset_key
from airstream.dagster_consumer.definitions import build_defs_from_airflow_instance
from airstream.dagster_consumer.mappings import (
    AssetMappings,
    TaskHandleDict,
    assets_with_dag_mappings,
    assets_with_multiple_task_mappings,
    assets_with_task_mappings,
    dag_asset_key,
)
from airstream.dagster_consumer.partitions import NoPartition, partition_for_logical_date
from airstream.dagster_consumer.peering.component import AirflowInstanceComponent
from airstream.dagster_consumer.peering.filter import AirflowFilter
from airstream.dagster_consumer.peering.loader import AirflowPeering, PeeringRefresh, refresh_airflow_peering
from airstream.dagster_consumer.peering.snapshot import PeeringSnapshot, fetch_peering_snapshot
from airstream.dagster_consumer.proxy_jobs import build_proxy_job_defs
from airstream.dagster_consumer.rest import (
    AirflowApiError,
    AirflowApiVersionError,
    AirflowAuthBackend,
    AirflowAuthenticationError,
    AirflowRestClient,
    AirflowRestError,
    AirflowRunTimeout,
    AirflowUnreachable,
    BasicAuthBackend,
    BearerTokenAuthBackend,
    TokenAuthBackend,
)
from airstream.dagster_consumer.sensor import build_airflow_event_sensor
from airstream.dagster_consumer.sources import (
    EventBatch,
    EventSource,
    EventSourceUnavailable,
    KafkaEventSource,
    RestEventSource,
)
from airstream.dagster_consumer.translate import translate
from airstream.dagster_consumer.trigger_dag import build_trigger_dag_asset, build_trigger_dag_op
from airstream.schemas import InvalidInstanceName

__all__ = [
    "AirflowApiError",
    "AirflowApiVersionError",
    "AirflowAssetKeyFn",
    "AirflowAssetKeys",
    "AirflowAuthBackend",
    "AirflowAuthenticationError",
    "AirflowFilter",
    "AirflowInstance",
    "AirflowInstanceComponent",
    "AirflowPeering",
    "AirflowRestClient",
    "AirflowRestError",
    "AirflowRunTimeout",
    "AirflowUnreachable",
    "AssetMappings",
    "BasicAuthBackend",
    "BearerTokenAuthBackend",
    "EventBatch",
    "EventSource",
    "EventSourceUnavailable",
    "InvalidInstanceName",
    "KafkaEventSource",
    "NoPartition",
    "PeeringRefresh",
    "PeeringSnapshot",
    "RestEventSource",
    "TaskHandleDict",
    "TokenAuthBackend",
    "airflow_asset_key",
    "assets_with_dag_mappings",
    "assets_with_multiple_task_mappings",
    "assets_with_task_mappings",
    "build_airflow_event_sensor",
    "build_defs_from_airflow_instance",
    "build_proxy_job_defs",
    "build_trigger_dag_asset",
    "build_trigger_dag_op",
    "dag_asset_key",
    "fetch_peering_snapshot",
    "partition_for_logical_date",
    "refresh_airflow_peering",
    "translate",
]
