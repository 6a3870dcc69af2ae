"""``AirflowInstanceComponent``: one Airflow instance, peered and observed, declared in YAML.

The common case of :func:`~airstream.dagster_consumer.build_defs_from_airflow_instance` as a
Dagster component (like Airlift's ``AirflowInstanceComponent``), in a project's defs folder::

    # defs/prod_airflow/defs.yaml
    type: airstream.dagster_consumer.AirflowInstanceComponent
    attributes:
      name: prod
      webserver_url: https://airflow.example.com
      auth:
        type: token                 # basic (Airflow 2) | token (Airflow 3 JWT) | bearer (a static token)
        username: dagster
        password_env: AIRFLOW_PASSWORD      # or password: "{{ env.AIRFLOW_PASSWORD }}"
      kafka:                        # optional: without it the sensor polls the REST API
        bootstrap_servers: broker:9092
        topic: airflow.events
      filter:
        dag_id_pattern: "warehouse_*"
        tags: [finance]
        retrieve_airflow_assets: true
      task_mappings:
        - dag_id: etl
          task_id: load
          assets: [{key: warehouse/orders}]
      dag_mappings:
        - dag_id: nightly_reports
          assets: [{key: reports/pdf}]
      airflow_asset_keys:
        "s3://warehouse/orders.parquet": warehouse/orders

It is a state-backed component (``VERSIONED_STATE_STORAGE``): the peering snapshot is kept in the
Dagster instance; the code location's Components tab in the UI refreshes it with one click, as
do ``airstream peering refresh`` and ``dg utils refresh-defs-state``.
"""

# No `from __future__ import annotations` here: Dagster's Resolvable reads the dataclass fields'
# types at runtime to derive the YAML schema.
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from dagster import AssetKey, AssetSpec, Definitions, Resolvable, ResolvedAssetSpec
from dagster.components import DefsStateConfig, DefsStateConfigArgs, ResolvedDefsStateConfig

from airstream.dagster_consumer.airflow_instance import AirflowInstance
from airstream.dagster_consumer.asset_keys import AirflowAssetKeys
from airstream.dagster_consumer.dag_history import DEFAULT_DAG_ASSET_HISTORY, DagAssetHistory
from airstream.dagster_consumer.mappings import assets_with_dag_mappings, assets_with_task_mappings
from airstream.dagster_consumer.peering.filter import AirflowFilter
from airstream.dagster_consumer.peering.loader import PeeringComponent, PeeringSettings, peering_state_key
from airstream.dagster_consumer.rest.auth import AirflowAuthBackend
from airstream.dagster_consumer.rest.records import AirflowRestApi
from airstream.dagster_consumer.sources.base import EventSource


@dataclass
class AirflowAuth(Resolvable):
    """How the component authenticates to Airflow's REST API.

    ``type``: ``basic`` (username and password, Airflow 2's REST API v1), ``token`` (username and
    password exchanged for a JWT, Airflow 3's REST API v2) or ``bearer`` (a static token, e.g. a
    managed service's). Secrets either inline (use Dagster's ``"{{ env.NAME }}"`` templating) or
    by environment variable name (``password_env``, ``token_env``), read when the code location
    loads, so the secret never appears in the component's attributes or the YAML.
    """

    type: Literal["basic", "token", "bearer"]
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    token: str | None = None
    token_env: str | None = None

    def secret(self, inline: str | None, env_name: str | None, what: str) -> str:
        if inline:
            return inline
        if env_name:
            value = os.environ.get(env_name)
            if not value:
                raise ValueError(
                    f"AirflowInstanceComponent auth: the environment variable {env_name} ({what}) is not set"
                )
            return value
        raise ValueError(f"AirflowInstanceComponent auth type {self.type!r} needs {what}: set it or its *_env variable")


@dataclass
class KafkaSource(Resolvable):
    """Where the listener publishes: the sensor reads this topic (otherwise it polls REST)."""

    bootstrap_servers: str
    topic: str = "airflow.events"
    client_options: dict[str, Any] | None = None


@dataclass
class AirflowFilterArgs(Resolvable):
    """The YAML form of :class:`AirflowFilter`."""

    dag_id_pattern: str | None = None
    tags: list[str] | None = None
    retrieve_airflow_assets: bool = True
    asset_uri_pattern: str | None = None
    include_inactive: bool = False


@dataclass
class TaskMapping(Resolvable):
    """Assets materialized when one Airflow task succeeds."""

    dag_id: str
    task_id: str
    assets: list[ResolvedAssetSpec]


@dataclass
class DagMapping(Resolvable):
    """Assets materialized when a run of one Airflow DAG succeeds."""

    dag_id: str
    assets: list[ResolvedAssetSpec]


def _default_defs_state() -> DefsStateConfigArgs:
    return DefsStateConfigArgs.versioned_state_storage().model_copy(update={"refresh_if_dev": False})


@dataclass
class AirflowInstanceComponent(PeeringComponent, Resolvable):
    """An Airflow instance peered over REST and observed through its events, from YAML.

    Attributes (see the module docstring for a full ``defs.yaml``): ``name`` (the listener's
    instance name), ``webserver_url``, ``auth``, ``kafka`` (optional), ``filter``,
    ``task_mappings``, ``dag_mappings``, ``airflow_asset_keys`` (URI → ``a/b/c`` key),
    ``sensor_minimum_interval_seconds``, ``dag_asset_history`` and ``airflow_state_checks`` (as in
    :func:`~airstream.dagster_consumer.build_defs_from_airflow_instance`), ``refresh_job`` and
    ``defs_state`` (Dagster's defs-state settings; default ``VERSIONED_STATE_STORAGE`` with
    ``refresh_if_dev: false``, so even ``dagster dev`` reuses the stored snapshot).

    Subclass it and override :meth:`build_auth_backend` (custom auth, e.g. a managed service's
    token) or :meth:`build_event_source`.
    """

    name: str
    webserver_url: str
    auth: AirflowAuth | None = None
    kafka: KafkaSource | None = None
    filter: AirflowFilterArgs | None = None
    task_mappings: list[TaskMapping] = field(default_factory=list)
    dag_mappings: list[DagMapping] = field(default_factory=list)
    airflow_asset_keys: dict[str, str] | None = None
    sensor_minimum_interval_seconds: int = 1
    dag_asset_history: DagAssetHistory = DEFAULT_DAG_ASSET_HISTORY
    airflow_state_checks: bool = True
    refresh_job: bool = True
    defs_state: ResolvedDefsStateConfig = field(default_factory=_default_defs_state)

    @property
    def defs_state_config(self) -> DefsStateConfig:
        return DefsStateConfig.from_args(self.defs_state, default_key=peering_state_key(self.name))

    def build_auth_backend(self) -> AirflowAuthBackend | None:
        """The REST auth backend, from ``webserver_url`` and ``auth`` (``None`` without ``auth``)."""
        from airstream.dagster_consumer.rest.auth import BasicAuthBackend, BearerTokenAuthBackend, TokenAuthBackend

        auth = self.auth
        if auth is None:
            return None
        if auth.type == "bearer":
            return BearerTokenAuthBackend(self.webserver_url, auth.secret(auth.token, auth.token_env, "a token"))
        if not auth.username:
            raise ValueError(f"AirflowInstanceComponent auth type {auth.type!r} needs a username")
        password = auth.secret(auth.password, auth.password_env, "a password")
        backend_cls = BasicAuthBackend if auth.type == "basic" else TokenAuthBackend
        return backend_cls(self.webserver_url, auth.username, password)

    def build_event_source(self) -> EventSource | None:
        """Kafka when ``kafka`` is set; otherwise ``None``: the sensor then polls the REST API (fallback)."""
        if self.kafka is None:
            return None
        from airstream.dagster_consumer.sources.kafka import KafkaEventSource

        return KafkaEventSource(
            self.kafka.bootstrap_servers, self.kafka.topic, client_options=self.kafka.client_options or {}
        )

    def build_airflow_instance(self) -> AirflowInstance:
        """The :class:`AirflowInstance` the component observes and peers with."""
        return AirflowInstance(
            name=self.name,
            event_source=self.build_event_source(),
            webserver_url=self.webserver_url,
            auth_backend=self.build_auth_backend(),
        )

    def build_rest_api(self, airflow_instance: AirflowInstance) -> AirflowRestApi | None:
        """The REST API peering reads (the instance's client); override it to substitute another."""
        return airflow_instance.rest

    @cached_property
    def _settings(self) -> PeeringSettings:
        instance = self.build_airflow_instance()
        mapped: list[Any] = []
        for task_mapping in self.task_mappings:
            mapped.extend(assets_with_task_mappings(task_mapping.dag_id, {task_mapping.task_id: task_mapping.assets}))
        mapped.extend(assets_with_dag_mappings({m.dag_id: m.assets for m in self.dag_mappings}))
        return PeeringSettings(
            airflow_instance=instance,
            rest_api=self.build_rest_api(instance),
            defs=Definitions(assets=_merge_same_keys(mapped)),
            airflow_filter=AirflowFilter(**vars(self.filter)) if self.filter else AirflowFilter(),
            airflow_asset_keys=AirflowAssetKeys(keys=_keys(self.airflow_asset_keys or {})),
            sensor_minimum_interval_seconds=self.sensor_minimum_interval_seconds,
            dag_asset_history=self.dag_asset_history,
            state_checks=self.airflow_state_checks,
            refresh_job=self.refresh_job,
        )

    def peering_settings(self) -> PeeringSettings:
        return self._settings


def _keys(raw: Mapping[str, str]) -> dict[str, AssetKey]:
    return {uri: AssetKey.from_user_string(key) for uri, key in raw.items()}


def _merge_same_keys(specs: Sequence[AssetSpec]) -> list[AssetSpec]:
    """One spec per key: an asset mapped to several tasks in YAML keeps every mapping."""
    merged: dict[AssetKey, AssetSpec] = {}
    for spec in specs:
        if spec.key not in merged:
            merged[spec.key] = spec
            continue
        metadata = dict(merged[spec.key].metadata)
        for name, value in spec.metadata.items():
            existing = metadata.get(name)
            if isinstance(value, list) and isinstance(existing, list):
                metadata[name] = existing + [entry for entry in value if entry not in existing]
            else:
                metadata.setdefault(name, value)
        merged[spec.key] = merged[spec.key].replace_attributes(metadata=metadata)
    return list(merged.values())
