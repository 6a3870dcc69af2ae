"""What peering reads from Airflow at load time, in a form that is stored and read back.

A :class:`PeeringSnapshot` is everything the peered definitions are built from: the DAG list,
the tasks of the DAGs that assets are mapped to, and the Airflow assets (datasets on Airflow 2)
with their producing tasks and consuming DAGs. It is JSON, so Dagster's defs-state storage can
keep it in the Dagster instance, and building definitions from it needs no network.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from airstream.dagster_consumer.peering.filter import AirflowFilter
from airstream.dagster_consumer.rest.records import AirflowAssetRecord, AirflowRestApi, DagRecord, TaskRecord

SNAPSHOT_FORMAT = 1


class InvalidPeeringSnapshot(ValueError):
    """A stored snapshot could not be read (another format, or damaged). Refresh to replace it."""


@dataclass(frozen=True)
class PeeringSnapshot:
    """The facts of one Airflow instance that peering turns into Dagster assets.

    ``dags`` holds every DAG the instance listed (the filter applies when definitions are built,
    so changing it needs no refresh); ``tasks`` the tasks of the DAGs with task mappings when it
    was fetched; ``assets`` the Airflow assets, unless the filter turned them off.

    Example::

        snapshot = fetch_peering_snapshot(airflow_instance.rest, instance_name="prod")
        PeeringSnapshot.from_json(snapshot.to_json()) == snapshot   # True
    """

    instance_name: str
    airflow_version: str
    api_version: str
    fetched_at: datetime
    dags: tuple[DagRecord, ...] = ()
    tasks: Mapping[str, tuple[TaskRecord, ...]] = field(default_factory=dict)
    assets: tuple[AirflowAssetRecord, ...] = ()
    assets_retrieved: bool = True

    def to_json(self) -> str:
        """The snapshot as a JSON document (what the Dagster instance stores)."""
        document: dict[str, Any] = {
            "format": SNAPSHOT_FORMAT,
            "instance_name": self.instance_name,
            "airflow_version": self.airflow_version,
            "api_version": self.api_version,
            "fetched_at": self.fetched_at.isoformat(),
            "dags": [asdict(dag) for dag in self.dags],
            "tasks": {dag_id: [asdict(task) for task in tasks] for dag_id, tasks in sorted(self.tasks.items())},
            "assets": [asdict(asset) for asset in self.assets],
            "assets_retrieved": self.assets_retrieved,
        }
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PeeringSnapshot:
        """Read a snapshot written by :meth:`to_json`; raises :class:`InvalidPeeringSnapshot`."""
        try:
            document = json.loads(text)
            if document.get("format") != SNAPSHOT_FORMAT:
                raise InvalidPeeringSnapshot(
                    f"the stored Airflow peering snapshot has format {document.get('format')!r}, this airstream "
                    f"reads format {SNAPSHOT_FORMAT}: refresh it (airstream peering refresh)"
                )
            return cls(
                instance_name=document["instance_name"],
                airflow_version=document["airflow_version"],
                api_version=document["api_version"],
                fetched_at=datetime.fromisoformat(document["fetched_at"]),
                dags=tuple(_dag(item) for item in document["dags"]),
                tasks={dag_id: tuple(_task(item) for item in items) for dag_id, items in document["tasks"].items()},
                assets=tuple(_asset(item) for item in document["assets"]),
                assets_retrieved=bool(document.get("assets_retrieved", True)),
            )
        except InvalidPeeringSnapshot:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InvalidPeeringSnapshot(
                f"the stored Airflow peering snapshot cannot be read ({error}): refresh it (airstream peering refresh)"
            ) from error


def fetch_peering_snapshot(
    api: AirflowRestApi,
    *,
    instance_name: str,
    task_dag_ids: Collection[str] = (),
    airflow_filter: AirflowFilter | None = None,
) -> PeeringSnapshot:
    """Read what peering needs from Airflow.

    Calls: ``server_info`` once, ``list_dags`` (one request per 100 DAGs), ``list_tasks`` once
    per DAG in ``task_dag_ids`` that Airflow lists (the DAGs with task mappings), and
    ``list_assets`` (one request per 100 assets) unless ``airflow_filter.retrieve_airflow_assets``
    is false. Airlift makes the same calls at load, plus one per DAG for its source code.

    Example::

        fetch_peering_snapshot(airflow_instance.rest, instance_name="prod", task_dag_ids={"etl"})
    """
    airflow_filter = airflow_filter or AirflowFilter()
    info = api.server_info()
    dags = tuple(sorted(api.list_dags(), key=lambda dag: dag.dag_id))
    listed = {dag.dag_id for dag in dags}
    tasks = {dag_id: tuple(api.list_tasks(dag_id)) for dag_id in sorted(set(task_dag_ids) & listed)}
    assets = tuple(sorted(api.list_assets(), key=lambda a: a.uri)) if airflow_filter.retrieve_airflow_assets else ()
    return PeeringSnapshot(
        instance_name=instance_name,
        airflow_version=info.airflow_version,
        api_version=info.api_version,
        fetched_at=datetime.now(timezone.utc),
        dags=dags,
        tasks=tasks,
        assets=assets,
        assets_retrieved=airflow_filter.retrieve_airflow_assets,
    )


def _dag(item: Mapping[str, Any]) -> DagRecord:
    return DagRecord(**{**item, "owners": tuple(item.get("owners", ())), "tags": tuple(item.get("tags", ()))})


def _task(item: Mapping[str, Any]) -> TaskRecord:
    return TaskRecord(**{**item, "downstream_task_ids": tuple(item.get("downstream_task_ids", ()))})


def _asset(item: Mapping[str, Any]) -> AirflowAssetRecord:
    return AirflowAssetRecord(
        **{
            **item,
            "producing_tasks": tuple((dag_id, task_id) for dag_id, task_id in item.get("producing_tasks", ())),
            "consuming_dag_ids": tuple(item.get("consuming_dag_ids", ())),
        }
    )
