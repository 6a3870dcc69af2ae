"""Which DAGs and Airflow assets peering turns into Dagster assets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from airstream.dagster_consumer.rest.records import AirflowAssetRecord, DagRecord


@dataclass(frozen=True)
class AirflowFilter:
    """Selects the DAGs (and Airflow assets) peering represents in Dagster, as Airlift's ``AirflowFilter``.

    Args:
        dag_id_pattern: a glob on the DAG id (``fnmatch``, case-sensitive: ``*``, ``?``, ``[abc]``),
            e.g. ``"etl_*"``. ``None``: every DAG. Airlift names this ``dag_id_ilike`` (an SQL
            ``ILIKE`` pattern on Airflow's side); airstream filters the listed DAGs itself, so the
            same filter works on REST API v1 and v2.
        tags: keep DAGs carrying at least one of these Airflow tags (Airflow's own ``tags`` filter
            matches "any" by default). ``None`` or empty: no tag condition.
        retrieve_airflow_assets: whether Airflow assets (datasets on Airflow 2) become Dagster
            asset specs with their producing and consuming DAGs as lineage (Airlift's
            ``retrieve_datasets``). ``False`` saves the ``/assets`` (``/datasets``) calls.
        asset_uri_pattern: a glob on the Airflow asset URI; ``None``: every asset.
        include_inactive: also keep DAGs Airflow reports as inactive (their file is gone).

    DAGs that assets are mapped to (``assets_with_task_mappings`` and friends) are always
    represented, whatever the filter says: the sensor records their events.

    Example::

        AirflowFilter(dag_id_pattern="warehouse_*", tags=["team:data"], retrieve_airflow_assets=True)
    """

    dag_id_pattern: str | None = None
    tags: Sequence[str] | None = None
    retrieve_airflow_assets: bool = True
    asset_uri_pattern: str | None = None
    include_inactive: bool = False

    def __post_init__(self) -> None:
        if self.dag_id_pattern is not None and (not isinstance(self.dag_id_pattern, str) or not self.dag_id_pattern):
            raise ValueError(
                f"AirflowFilter dag_id_pattern must be a non-empty glob such as 'etl_*', got {self.dag_id_pattern!r}"
            )
        if self.tags is not None:
            if isinstance(self.tags, str) or not all(isinstance(tag, str) and tag for tag in self.tags):
                raise ValueError(
                    f"AirflowFilter tags must be a list of tag strings such as ['finance'], got {self.tags!r}"
                )
            object.__setattr__(self, "tags", tuple(self.tags))

    def keeps_dag(self, dag: DagRecord) -> bool:
        """Whether ``dag`` passes the filter.

        Example::

            AirflowFilter(dag_id_pattern="etl_*").keeps_dag(DagRecord("etl_daily"))   # True
        """
        if not self.include_inactive and dag.is_active is False:
            return False
        if self.dag_id_pattern is not None and not fnmatchcase(dag.dag_id, self.dag_id_pattern):
            return False
        return not self.tags or bool(set(self.tags) & set(dag.tags))

    def keeps_asset(self, asset: AirflowAssetRecord) -> bool:
        """Whether the Airflow asset passes the filter (``retrieve_airflow_assets`` aside)."""
        return self.asset_uri_pattern is None or fnmatchcase(asset.uri, self.asset_uri_pattern)
