"""The benchmark's Dagster code locations: airstream's sensor and Airlift's polling sensors, side by side.

``dagster dev -w`` loads this file once per observer (:func:`bench.compare.dagster_dev.workspace_yaml`),
each time the attribute ``observer_<n>`` (lazy definitions); ``$BENCH_OBSERVERS`` (JSON) says
what to observe::

    {"airstream": [{"name": "af2", "bootstrap_servers": "127.0.0.1:9092", "topic": "t"}],
     "airlift": [{"name": "airlift_default", "url": "http://127.0.0.1:8081", "interval": 30}],
     "mapped_tasks": {"bench_0000": ["work"], "bench_failing": ["extract", "load"]}}

An airstream observer with ``"gap_repair_url"`` and ``"gap_repair_interval"`` also sweeps that
Airflow's REST API (basic auth) every so many seconds, its sensor built as the README says for a
tuned interval (:func:`airstream.dagster_consumer.build_airflow_event_sensor`).

Every observer maps each task of ``mapped_tasks`` to ``[name, "task", dag_id, task_id]``; DAG
runs land on ``[name, "dag", dag_id]`` (an airstream observer's ``dag_asset_history``, default
``"runs"``, may ask for every event there). Distinct names keep the observers' keys apart.
This is the only module of the repository that imports ``dagster_airlift``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dagster import AssetKey, AssetSpec, Definitions, definitions
from dagster_airlift.core import AirflowBasicAuthBackend, assets_with_task_mappings
from dagster_airlift.core import AirflowInstance as AirliftInstance
from dagster_airlift.core import build_defs_from_airflow_instance as airlift_defs

from airstream.dagster_consumer import (
    AirflowInstance,
    AirflowRestClient,
    AssetMappings,
    BasicAuthBackend,
    KafkaEventSource,
    build_airflow_event_sensor,
    build_defs_from_airflow_instance,
)
from airstream.dagster_consumer import assets_with_task_mappings as airstream_task_mappings

USERNAME = PASSWORD = "admin"


def _task_specs(name: str, dag_id: str, task_ids: list[str]) -> dict[str, list[AssetSpec]]:
    return {task: [AssetSpec(AssetKey([name, "task", dag_id, task]))] for task in task_ids}


def _airstream(observer: dict[str, Any], mapped_tasks: dict[str, list[str]]) -> Definitions:
    name = observer["name"]
    source = KafkaEventSource(bootstrap_servers=observer["bootstrap_servers"], topic=observer["topic"])
    mapped = [
        spec
        for dag_id, task_ids in sorted(mapped_tasks.items())
        for spec in airstream_task_mappings(dag_id=dag_id, task_mappings=_task_specs(name, dag_id, task_ids))
    ]
    instance = AirflowInstance(name=name, event_source=source)
    history = observer.get("dag_asset_history", "runs")
    built = build_defs_from_airflow_instance(
        airflow_instance=instance,
        defs=Definitions(assets=mapped),
        sensor_minimum_interval_seconds=1,
        dag_asset_history=history,
    )
    if not observer.get("gap_repair_url"):
        return built
    # The REST client goes to the sensor only: an instance with an auth_backend would also peer
    # (list every DAG at load), which is not what this observer measures.
    rest = AirflowRestClient(BasicAuthBackend(observer["gap_repair_url"], USERNAME, PASSWORD))
    sensor = build_airflow_event_sensor(
        airflow_instance=instance,
        mappings=AssetMappings.from_definitions(Definitions(assets=mapped), dag_asset_history=history),
        minimum_interval_seconds=1,
        rest_api=rest,
        gap_repair_interval=float(observer["gap_repair_interval"]),
    )
    return Definitions(
        assets=built.assets,
        asset_checks=built.asset_checks,
        jobs=built.jobs,
        sensors=[sensor, *(other for other in built.sensors or [] if other.name != sensor.name)],
        schedules=built.schedules,
        resources=built.resources,
    )


def _airlift(observer: dict[str, Any], mapped_tasks: dict[str, list[str]]) -> Definitions:
    name = observer["name"]
    mapped = [
        spec
        for dag_id, task_ids in sorted(mapped_tasks.items())
        for spec in assets_with_task_mappings(
            dag_id=dag_id,
            task_mappings={task: [AssetSpec(AssetKey([name, "task", dag_id, task]))] for task in task_ids},
        )
    ]
    instance = AirliftInstance(
        auth_backend=AirflowBasicAuthBackend(webserver_url=observer["url"], username=USERNAME, password=PASSWORD),
        name=name,
    )
    return airlift_defs(
        airflow_instance=instance,
        defs=Definitions(assets=mapped),
        sensor_minimum_interval_seconds=int(observer["interval"]),
    )


def observer_names(config: dict[str, Any]) -> list[str]:
    """The observers ``config`` names, in the order of their attributes ``observer_0``, ``observer_1``, ..."""
    return [observer["name"] for observer in [*config.get("airstream", []), *config.get("airlift", [])]]


def build_observer_defs(config: dict[str, Any], index: int) -> Definitions:
    """The definitions of the ``index``-th observer of ``config`` (see :func:`observer_names`)."""
    mapped_tasks = config.get("mapped_tasks", {})
    airstream = config.get("airstream", [])
    if index < len(airstream):
        return _airstream(airstream[index], mapped_tasks)
    return _airlift(config.get("airlift", [])[index - len(airstream)], mapped_tasks)


def _lazy(config: dict[str, Any], index: int) -> Any:
    @definitions
    def observer() -> Definitions:
        return build_observer_defs(config, index)

    return observer


# One code location per observer (``dagster dev -w``, see bench.compare.dagster_dev): Airlift's sensor
# records every Airlift-mapped asset of its code location, whichever instance it belongs to, so two
# Airlift instances in one location would record each other's runs.
_CONFIG = json.loads(os.environ.get("BENCH_OBSERVERS", "{}"))
for _index in range(len(observer_names(_CONFIG))):
    globals()[f"observer_{_index}"] = _lazy(_CONFIG, _index)
