"""Peering with a cache: what is fetched from Airflow is kept in the Dagster instance until a refresh.

Built on Dagster's public state-backed components (:class:`dagster.StateBackedComponent`) with
``VERSIONED_STATE_STORAGE``: the snapshot (:class:`PeeringSnapshot`, JSON) is stored in the
Dagster instance's defs-state storage (a blob under ``$DAGSTER_HOME/storage/defs_state`` by
default, its version in the instance's key-value store), and every load of the code location,
a reload from the UI included, builds the definitions from the stored version without calling
Airflow. The first load with nothing stored fetches once and stores it. A refresh fetches a new
version:

* ``airstream peering refresh -m my_project.definitions`` (or :func:`refresh_airflow_peering`);
* ``dg utils refresh-defs-state`` for projects managed by ``dg``;
* in the UI, the code location's Components tab, Refresh on the component (YAML components in a
  defs folder: it fetches, stores and reloads the location in one click);
* the job ``<instance>__airflow_peering_refresh`` (any definitions; the new snapshot is used from
  the next load of the code location, e.g. Reload definitions).
"""

from __future__ import annotations

import asyncio
import logging
from abc import abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    Definitions,
    OpExecutionContext,
    StateBackedComponent,
    job,
    op,
)
from dagster.components import ComponentLoadContext, DefsStateConfig, DefsStateConfigArgs

from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.asset_keys import AirflowAssetKeys
from airstream.dagster_consumer.dag_history import DEFAULT_DAG_ASSET_HISTORY, DagAssetHistory
from airstream.dagster_consumer.health import DEFAULT_HEALTH_INTERVAL
from airstream.dagster_consumer.mappings import AssetMappings
from airstream.dagster_consumer.observation_defs import build_observation_defs
from airstream.dagster_consumer.peering import dagster_state
from airstream.dagster_consumer.peering.filter import AirflowFilter
from airstream.dagster_consumer.peering.snapshot import InvalidPeeringSnapshot, PeeringSnapshot, fetch_peering_snapshot
from airstream.dagster_consumer.proxy_jobs import with_proxy_jobs_of
from airstream.dagster_consumer.recorded_ids import DEFAULT_DEDUPLICATION_HORIZON, Horizon
from airstream.dagster_consumer.rest.records import AirflowRestApi

logger = logging.getLogger("airstream.peering")

_LOADED: dict[str, PeeringComponent] = {}
_FIRST_FETCH_SUPPRESSED = False


@contextmanager
def first_fetch_suppressed() -> Iterator[None]:
    """Loads in the block do not fetch when nothing is stored (the refresh command fetches right after)."""
    global _FIRST_FETCH_SUPPRESSED
    previous, _FIRST_FETCH_SUPPRESSED = _FIRST_FETCH_SUPPRESSED, True
    try:
        yield
    finally:
        _FIRST_FETCH_SUPPRESSED = previous


def peering_state_key(instance_name: str) -> str:
    """The default defs-state key of an instance's peering snapshot: ``airstream_peering__<name>``."""
    return f"airstream_peering__{instance_name}"


def refresh_job_name(instance_name: str) -> str:
    """The name of the job that refreshes an instance's peering snapshot."""
    return f"{instance_name}__airflow_peering_refresh"


@dataclass(frozen=True)
class PeeringSettings:
    """Everything a peering load needs, whichever way it was configured (Python or YAML)."""

    airflow_instance: AirflowInstance
    rest_api: AirflowRestApi | None
    defs: Definitions = field(default_factory=Definitions)
    airflow_filter: AirflowFilter = field(default_factory=AirflowFilter)
    airflow_asset_keys: AirflowAssetKeys = field(default_factory=AirflowAssetKeys)
    sensor_minimum_interval_seconds: int = 1
    default_sensor_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING
    deduplication_horizon: Horizon = DEFAULT_DEDUPLICATION_HORIZON
    health_interval: float | None = DEFAULT_HEALTH_INTERVAL
    dag_asset_history: DagAssetHistory = DEFAULT_DAG_ASSET_HISTORY
    state_checks: bool = True
    refresh_job: bool = True


class PeeringComponent(StateBackedComponent):
    """What the Python loader (:class:`AirflowPeering`) and the YAML component share.

    Subclasses say how they are configured (:meth:`peering_settings`) and where the snapshot is
    kept (:attr:`defs_state_config`); this class fetches, stores and builds.
    """

    last_snapshot: PeeringSnapshot | None = None
    project_root: Path | None = None  # the project it was last loaded in (LOCAL_FILESYSTEM state lives there)

    @abstractmethod
    def peering_settings(self) -> PeeringSettings:
        """The instance, its REST API, the user's definitions, the filter and the sensor options."""

    def fetch_snapshot(self) -> PeeringSnapshot:
        """Read a new snapshot from Airflow (no storing). Raises when there is no REST access."""
        settings = self.peering_settings()
        if settings.rest_api is None:
            raise RuntimeError(
                f"Airflow instance {settings.airflow_instance.name!r} has no REST access, so it cannot be peered: "
                "give AirflowInstance an auth_backend (REST API URL and credentials)"
            )
        mappings = AssetMappings.from_definitions(settings.defs)
        snapshot = fetch_peering_snapshot(
            settings.rest_api,
            instance_name=settings.airflow_instance.name,
            task_dag_ids={dag_id for dag_id, _ in mappings.by_task},
            airflow_filter=settings.airflow_filter,
        )
        self.last_snapshot = snapshot
        return snapshot

    def write_state_to_path(self, state_path: Path) -> None:
        state_path.write_text(self.fetch_snapshot().to_json())

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        key = self.defs_state_config.key
        _LOADED[key] = self  # for the refresh command, which loads the user's definitions in-process
        self.project_root = context.project_root
        if not dagster_state.has_state_storage():
            # No Dagster instance in this process (a plain script): nothing to cache in.
            logger.warning("airstream: no Dagster instance to keep the Airflow peering snapshot in; fetching it now")
            return self._defs_from_snapshot(self._fetch_or_none())
        if (
            not _FIRST_FETCH_SUPPRESSED
            and dagster_state.is_initializing()
            and dagster_state.stored_version(key) is None
        ):
            try:
                version = asyncio.run(self.refresh_state(context.project_root))
            except Exception as error:  # Airflow down at the very first load: observe through events meanwhile
                logger.warning(
                    "airstream: could not peer with Airflow instance %r (%s); its DAG assets appear as events "
                    "arrive; refresh the peering once Airflow answers",
                    self.peering_settings().airflow_instance.name,
                    error,
                )
            else:
                dagster_state.record_loaded_version(key, version)
        return super().build_defs(context)

    def build_defs_from_state(self, context: ComponentLoadContext, state_path: Path | None) -> Definitions:
        snapshot: PeeringSnapshot | None = None
        if state_path is not None:
            try:
                snapshot = PeeringSnapshot.from_json(state_path.read_text())
            except InvalidPeeringSnapshot as error:
                logger.warning("airstream: %s", error)
        return self._defs_from_snapshot(snapshot)

    def _fetch_or_none(self) -> PeeringSnapshot | None:
        try:
            return self.fetch_snapshot()
        except Exception as error:
            logger.warning("airstream: could not peer with Airflow: %s", error)
            return None

    def _defs_from_snapshot(self, snapshot: PeeringSnapshot | None) -> Definitions:
        settings = self.peering_settings()
        defs = build_observation_defs(
            airflow_instance=settings.airflow_instance,
            defs=settings.defs,
            airflow_asset_keys=settings.airflow_asset_keys,
            snapshot=snapshot,
            airflow_filter=settings.airflow_filter,
            sensor_minimum_interval_seconds=settings.sensor_minimum_interval_seconds,
            default_sensor_status=settings.default_sensor_status,
            deduplication_horizon=settings.deduplication_horizon,
            health_interval=settings.health_interval,
            rest_api=settings.rest_api,
            dag_asset_history=settings.dag_asset_history,
            state_checks=settings.state_checks,
        )
        defs = with_proxy_jobs_of(defs, settings.defs, settings.airflow_instance.name)  # migration's jobs
        if not settings.refresh_job:
            return defs
        return Definitions.merge(defs, Definitions(jobs=[self._refresh_job(settings.airflow_instance.name)]))

    def _refresh_job(self, instance_name: str):  # -> JobDefinition
        component = self

        @op(name=f"{instance_name}__refresh_airflow_peering")
        def refresh_airflow_peering_op(context) -> None:
            # No annotation: under `from __future__ import annotations` Dagster would see a string.
            op_context: OpExecutionContext = context
            result = refresh_airflow_peering(component, instance=op_context.instance)
            op_context.log.info(result.summary())

        @job(
            name=refresh_job_name(instance_name),
            description=(
                f"Fetches the DAG list and Airflow assets of Airflow instance {instance_name!r} again and stores "
                "them in this Dagster instance; the next load of the code location (Reload definitions) shows them."
            ),
        )
        def refresh_airflow_peering_job() -> None:
            refresh_airflow_peering_op()

        return refresh_airflow_peering_job


@dataclass
class AirflowPeering(PeeringComponent):
    """The Python form of peering: what :func:`build_defs_from_airflow_instance` uses when the
    instance has REST access. A :class:`dagster.StateBackedComponent`, so it can also be
    declared in a defs folder (``@component_instance``) to get the UI's one-click Refresh.

    Args:
        airflow_instance: the instance to peer with; its ``rest`` is used unless ``rest_api`` is given.
        defs: the user's definitions (task and DAG mappings).
        airflow_filter: which DAGs and Airflow assets become Dagster assets.
        state_key: the defs-state key (default ``airstream_peering__<name>``), unique per deployment.
        rest_api: an explicit REST API (anything with :class:`AirflowRestApi`'s calls).
        dag_asset_history, state_checks: as ``dag_asset_history`` and ``airflow_state_checks`` of
            :func:`~airstream.dagster_consumer.build_defs_from_airflow_instance`.

    Example::

        peering = AirflowPeering(airflow_instance=prod, defs=Definitions(assets=mapped),
                                 airflow_filter=AirflowFilter(tags=["finance"]))
        defs = dagster.build_defs_for_component(peering)
        refresh_airflow_peering(peering, instance=DagsterInstance.get())
    """

    airflow_instance: AirflowInstance
    defs: Definitions = field(default_factory=Definitions)
    airflow_filter: AirflowFilter = field(default_factory=AirflowFilter)
    airflow_asset_keys: AirflowAssetKeys = field(default_factory=AirflowAssetKeys)
    sensor_minimum_interval_seconds: int = 1
    default_sensor_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING
    deduplication_horizon: Horizon = DEFAULT_DEDUPLICATION_HORIZON
    health_interval: float | None = DEFAULT_HEALTH_INTERVAL
    state_key: str | None = None
    rest_api: AirflowRestApi | None = None
    refresh_job: bool = True
    dag_asset_history: DagAssetHistory = DEFAULT_DAG_ASSET_HISTORY
    state_checks: bool = True

    def peering_settings(self) -> PeeringSettings:
        return PeeringSettings(
            airflow_instance=self.airflow_instance,
            rest_api=self.rest_api if self.rest_api is not None else rest_api_of(self.airflow_instance),
            defs=self.defs,
            airflow_filter=self.airflow_filter,
            airflow_asset_keys=self.airflow_asset_keys,
            sensor_minimum_interval_seconds=self.sensor_minimum_interval_seconds,
            default_sensor_status=self.default_sensor_status,
            deduplication_horizon=self.deduplication_horizon,
            health_interval=self.health_interval,
            dag_asset_history=self.dag_asset_history,
            state_checks=self.state_checks,
            refresh_job=self.refresh_job,
        )

    @property
    def defs_state_config(self) -> DefsStateConfig:
        args = DefsStateConfigArgs.versioned_state_storage().model_copy(update={"refresh_if_dev": False})
        return DefsStateConfig.from_args(
            args, default_key=self.state_key or peering_state_key(self.airflow_instance.name)
        )


@dataclass(frozen=True)
class PeeringRefresh:
    """What a refresh stored: the defs-state key, the new version and the snapshot."""

    key: str
    version: str
    snapshot: PeeringSnapshot

    def summary(self) -> str:
        """One line for logs and the command line."""
        s = self.snapshot
        return (
            f"airstream: peered with Airflow instance {s.instance_name!r} (Airflow {s.airflow_version}, REST "
            f"{s.api_version}): {len(s.dags)} DAG(s), {len(s.assets)} Airflow asset(s); stored as {self.key} "
            f"version {self.version}. Reload the code location to see them."
        )


def refresh_airflow_peering(peering: PeeringComponent, *, instance: DagsterInstance) -> PeeringRefresh:
    """Fetch a new snapshot from Airflow and store it in ``instance``; the next load uses it.

    Example::

        with DagsterInstance.get() as instance:
            print(refresh_airflow_peering(peering, instance=instance).summary())
    """
    with dagster_state.instance_state_storage(instance):
        version = asyncio.run(peering.refresh_state(peering.project_root or Path.cwd()))
    snapshot = peering.last_snapshot
    if snapshot is None:  # write_state_to_path sets it; a subclass that overrides it must too
        raise RuntimeError(f"refreshing {peering.defs_state_config.key} stored no snapshot")
    return PeeringRefresh(key=peering.defs_state_config.key, version=version, snapshot=snapshot)


def loaded_peerings() -> dict[str, PeeringComponent]:
    """The peering loaders whose definitions this process has built, by defs-state key."""
    return dict(_LOADED)


def rest_api_of(airflow_instance: AirflowInstance) -> AirflowRestApi | None:
    """The instance's REST client (``AirflowInstance.rest``), or ``None`` when it has no REST access."""
    return airflow_instance.rest
