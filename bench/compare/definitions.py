"""The benchmark's Dagster code location: airstream's sensor and Airlift's polling sensors, side by side.

``dagster dev -f`` loads this file; ``$BENCH_OBSERVERS`` (JSON, written by
:func:`bench.compare.dagster_dev.observers_env`) says what to observe::

    {"airstream": [{"name": "af2", "bootstrap_servers": "127.0.0.1:9092", "topic": "t", "dag_asset_history": "runs"}],
     "airlift": [{"name": "airlift30", "url": "http://127.0.0.1:8081", "interval": 30}],
     "mapped_tasks": {"bench_0000": ["work"], "bench_failing": ["extract", "load"]}}

Every observer maps each task of ``mapped_tasks`` to ``[name, "task", dag_id, task_id]``; DAG runs
land on ``[name, "dag", dag_id]`` (airstream's ``dag_asset_history``, default ``"runs"``, may ask
for every event there too). Distinct names keep the observers' keys apart.
This is the only module of the repository that imports ``dagster_airlift``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dagster import AssetKey, AssetSpec, Definitions
from dagster_airlift.core import AirflowBasicAuthBackend, assets_with_task_mappings
from dagster_airlift.core import AirflowInstance as AirliftInstance
from dagster_airlift.core import build_defs_from_airflow_instance as airlift_defs

from airstream.dagster_consumer import AirflowInstance, KafkaEventSource, build_defs_from_airflow_instance
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
    return build_defs_from_airflow_instance(
        airflow_instance=AirflowInstance(name=name, event_source=source),
        defs=Definitions(assets=mapped),
        sensor_minimum_interval_seconds=1,
        dag_asset_history=observer.get("dag_asset_history", "runs"),
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


def build_bench_defs(config: dict[str, Any]) -> Definitions:
    """The merged definitions of every observer ``config`` names."""
    parts = [_airstream(observer, config.get("mapped_tasks", {})) for observer in config.get("airstream", [])]
    parts += [_airlift(observer, config.get("mapped_tasks", {})) for observer in config.get("airlift", [])]
    return Definitions.merge(*parts)


defs = build_bench_defs(json.loads(os.environ.get("BENCH_OBSERVERS", "{}")))
