"""Building Dagster definitions for an observed Airflow instance."""

from __future__ import annotations

from collections.abc import Mapping

from dagster import DefaultSensorStatus, Definitions, build_defs_for_component

from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.asset_keys import AirflowAssetKeyFn, AirflowAssetKeys, KeyLike
from airstream.dagster_consumer.dag_history import DEFAULT_DAG_ASSET_HISTORY, DagAssetHistory, check_dag_asset_history
from airstream.dagster_consumer.health import DEFAULT_HEALTH_INTERVAL
from airstream.dagster_consumer.observation_defs import build_observation_defs
from airstream.dagster_consumer.peering.filter import AirflowFilter
from airstream.dagster_consumer.peering.loader import AirflowPeering, rest_api_of
from airstream.dagster_consumer.proxy_jobs import with_proxy_jobs_of
from airstream.dagster_consumer.recorded_ids import DEFAULT_DEDUPLICATION_HORIZON, Horizon


def build_defs_from_airflow_instance(
    *,
    airflow_instance: AirflowInstance,
    defs: Definitions | None = None,
    sensor_minimum_interval_seconds: int = 1,
    default_sensor_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    deduplication_horizon: Horizon = DEFAULT_DEDUPLICATION_HORIZON,
    health_interval: float | None = DEFAULT_HEALTH_INTERVAL,
    airflow_asset_keys: Mapping[str, KeyLike] | None = None,
    airflow_asset_key_fn: AirflowAssetKeyFn | None = None,
    airflow_filter: AirflowFilter | None = None,
    peering_state_key: str | None = None,
    dag_asset_history: DagAssetHistory = DEFAULT_DAG_ASSET_HISTORY,
    airflow_state_checks: bool = True,
) -> Definitions:
    """Definitions that observe ``airflow_instance`` through its events, and peer with it over REST.

    Adds, to ``defs``: an asset for each DAG that ``defs`` maps assets to (DAGs seen only in
    events are recorded under the same key form, ``[instance, "dag", dag_id]``), downstream of
    the assets its tasks are mapped to; the checks ``airflow_task_succeeded`` and
    ``airflow_run_succeeded`` that turn failures red; and the sensor that records task and
    DAG-run outcomes on the DAG assets and the mapped assets, and Airflow asset updates on the
    Dagster assets their URIs name. All of it, and the mapped assets that name no group, is in
    the group named after the instance.

    When the instance has REST access (``airflow_instance.rest``), it also peers: every DAG
    Airflow lists that ``airflow_filter`` keeps becomes a DAG asset with its description,
    owners, tags, schedule, file, a link to the Airflow UI and, for DAGs with task mappings,
    its tasks; Airflow assets (datasets on Airflow 2) become asset specs with their producing
    and consuming DAGs as lineage; and a job ``<name>__airflow_peering_refresh`` is added. What
    is fetched is kept in the Dagster instance (see :mod:`airstream.dagster_consumer.peering`):
    loading the code location again does not call Airflow until a refresh
    (``airstream peering refresh``).

    Migration: for every task (and DAG) that ``defs`` maps executable assets to (``@asset``, not
    ``AssetSpec``), a job ``airstream_proxy__<name>__<dag>[__<task>]`` that materializes them
    (see :mod:`airstream.dagster_consumer.proxy_jobs`): the job a proxied Airflow task launches.

    Args:
        airflow_asset_keys: Airflow asset URI → Dagster asset key, for the Airflow assets you
            name yourself (values: ``AssetKey``, a string, or a list of strings).
        airflow_asset_key_fn: a function from a URI to a key (or ``None``), for whole families of
            URIs. URIs that neither names get :func:`airflow_asset_key`'s default key, e.g.
            ``s3://warehouse/orders.parquet`` → ``["s3", "warehouse", "orders_parquet"]``.
        airflow_filter: which DAGs and Airflow assets peering represents (REST access only).
        peering_state_key: where the peering snapshot is kept in the Dagster instance
            (default ``airstream_peering__<name>``); unique per deployment.
        dag_asset_history: what the DAG assets' event logs hold: ``"runs"`` (default), one record
            per finished DAG run with its task outcomes summed up in the metadata; ``"all"``,
            every DAG-run and task-instance event (see :mod:`airstream.dagster_consumer.dag_history`).
        deduplication_horizon: how long (in Airflow time) the ids of recorded events are kept to
            drop duplicates, a ``timedelta`` or seconds (default 30 days); older events are looked
            up in Dagster's event log instead. Deduplication cannot be turned off.
        health_interval: at most how often, in seconds, the health asset
            ``[instance, "airstream_health"]`` gets a heartbeat with the lag and running totals
            (default 300; ``None``: incidents only).
        airflow_state_checks: record the checks ``airflow_task_succeeded`` (task-mapped assets)
            and ``airflow_run_succeeded`` (DAG assets, DAG-mapped assets) from every outcome, so a
            failure shows red in the UI (default ``True``; see :mod:`airstream.dagster_consumer.checks`).

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
    keys = AirflowAssetKeys(keys=airflow_asset_keys or {}, key_fn=airflow_asset_key_fn)
    check_dag_asset_history(dag_asset_history)
    if rest_api_of(airflow_instance) is None:
        if airflow_filter is not None:
            raise ValueError(
                f"airflow_filter selects the DAGs peering fetches over REST, but Airflow instance "
                f"{airflow_instance.name!r} has no REST access: give it an auth_backend, or drop airflow_filter"
            )
        observed = build_observation_defs(
            airflow_instance=airflow_instance,
            defs=defs,
            airflow_asset_keys=keys,
            sensor_minimum_interval_seconds=sensor_minimum_interval_seconds,
            default_sensor_status=default_sensor_status,
            deduplication_horizon=deduplication_horizon,
            health_interval=health_interval,
            dag_asset_history=dag_asset_history,
            state_checks=airflow_state_checks,
        )
        return with_proxy_jobs_of(observed, defs, airflow_instance.name)
    peering = AirflowPeering(
        airflow_instance=airflow_instance,
        defs=defs or Definitions(),
        airflow_filter=airflow_filter or AirflowFilter(),
        airflow_asset_keys=keys,
        sensor_minimum_interval_seconds=sensor_minimum_interval_seconds,
        default_sensor_status=default_sensor_status,
        deduplication_horizon=deduplication_horizon,
        health_interval=health_interval,
        state_key=peering_state_key,
        dag_asset_history=dag_asset_history,
        state_checks=airflow_state_checks,
    )
    return build_defs_for_component(peering)
