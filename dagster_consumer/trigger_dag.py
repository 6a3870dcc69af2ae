"""Run an Airflow DAG from Dagster and wait for it: as an asset, or as an op in a job.

The DAG may live in any Airflow instance with REST access (``AirflowInstance(..., auth_backend=...)``),
not only the one this code location observes, so a Dagster asset can depend on a pipeline that
still runs in another team's Airflow.

Example::

    from dagster import AssetSpec, DailyPartitionsDefinition, Definitions, job
    from airstream.dagster_consumer import AirflowInstance, TokenAuthBackend
    from airstream.dagster_consumer.trigger_dag import build_trigger_dag_asset, build_trigger_dag_op

    finance = AirflowInstance(
        name="finance", auth_backend=TokenAuthBackend("https://airflow.finance.example", "dagster", "...")
    )

    # An asset materialized by a run of finance's "ledger_close" DAG; daily partitions become the
    # run's logical date. The asset fails if the run fails or takes longer than two hours.
    ledger = build_trigger_dag_asset(
        finance,
        "ledger_close",
        spec=AssetSpec("ledger", partitions_def=DailyPartitionsDefinition("2025-01-01")),
        conf={"source": "dagster"},
        timeout=7200,
        poll_interval=30,
    )

    # The same as a step of a job.
    close_ledger = build_trigger_dag_op(finance, "ledger_close", timeout=7200)

    @job
    def month_end():
        close_ledger()

    defs = Definitions(assets=[ledger], jobs=[month_end])
"""

# No "from __future__ import annotations": Dagster reads the context parameter's annotation at definition time.
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpDefinition,
    OpExecutionContext,
    Out,
    Output,
    TimeWindowPartitionsDefinition,
    multi_asset,
    op,
)

from airstream.dagster_consumer.airflow_instance import AirflowInstance

__all__ = ["build_trigger_dag_asset", "build_trigger_dag_op", "run_dag_and_wait"]


def run_dag_and_wait(
    airflow_instance: AirflowInstance,
    dag_id: str,
    *,
    conf: Mapping[str, object] | None = None,
    logical_date: datetime | None = None,
    timeout: float = 3600.0,
    poll_interval: float = 10.0,
    log: Any = None,
) -> dict[str, Any]:
    """Trigger ``dag_id``, wait for the run, and return its metadata (dag id, run id, state, link).

    Raises :class:`dagster.Failure` (with the same metadata) when the run fails, and
    :class:`AirflowRunTimeout` when it is not finished within ``timeout`` seconds.
    """
    run_id = airflow_instance.trigger_dag(dag_id, conf=dict(conf or {}), logical_date=logical_date)
    metadata: dict[str, Any] = {
        "airflow/instance": airflow_instance.name,
        "airflow/dag_id": dag_id,
        "airflow/run_id": run_id,
    }
    if airflow_instance.webserver_url:
        metadata["airflow/url"] = MetadataValue.url(_run_url(airflow_instance, dag_id, run_id))
    if log is not None:
        log.info(
            f"Triggered Airflow DAG {dag_id} in {airflow_instance.name}: run {run_id}; waiting up to {timeout:g} s"
        )
    state = airflow_instance.wait_for_run_completion(dag_id, run_id, timeout=timeout, poll_interval=poll_interval)
    metadata["airflow/state"] = state
    if state != "success":
        raise Failure(
            description=f"Airflow DAG run {dag_id}/{run_id} in {airflow_instance.name} ended {state}",
            metadata=metadata,
        )
    return metadata


def build_trigger_dag_asset(
    airflow_instance: AirflowInstance,
    dag_id: str,
    *,
    spec: AssetSpec | None = None,
    conf: Mapping[str, object] | None = None,
    timeout: float = 3600.0,
    poll_interval: float = 10.0,
    name: str | None = None,
) -> AssetsDefinition:
    """An asset materialized by running ``dag_id`` in ``airflow_instance`` and waiting for the run.

    Args:
        spec: the asset (key, deps, partitions, group...). Default: key
            ``[instance name, "dag_run", dag_id]``, apart from the peered DAG asset
            ``[instance name, "dag", dag_id]`` that observation records.
        conf: the run's ``conf``.
        timeout, poll_interval: seconds to wait for the run, and between two looks at its state.
        name: the op's name (default: the asset key as an identifier, e.g. ``finance__dag_run__ledger_close``).

    With time-window partitions, the partition's start is the run's logical date. The
    materialization carries the run id, its state and a link to it; a failed run fails the step.
    """
    spec = spec or AssetSpec(
        key=[airflow_instance.name, "dag_run", dag_id],
        description=f"A run of the Airflow DAG {dag_id} in {airflow_instance.name}, triggered from Dagster.",
        kinds={"airflow"},
    )
    asset_spec = spec

    @multi_asset(specs=[asset_spec], name=name or asset_spec.key.to_python_identifier())
    def _trigger(context: AssetExecutionContext) -> MaterializeResult:
        logical_date = None
        if context.has_partition_key and isinstance(asset_spec.partitions_def, TimeWindowPartitionsDefinition):
            logical_date = context.partition_time_window.start
        metadata = run_dag_and_wait(
            airflow_instance,
            dag_id,
            conf=conf,
            logical_date=logical_date,
            timeout=timeout,
            poll_interval=poll_interval,
            log=context.log,
        )
        return MaterializeResult(asset_key=asset_spec.key, metadata=metadata)

    return _trigger


def build_trigger_dag_op(
    airflow_instance: AirflowInstance,
    dag_id: str,
    *,
    conf: Mapping[str, object] | None = None,
    timeout: float = 3600.0,
    poll_interval: float = 10.0,
    name: str | None = None,
) -> OpDefinition:
    """An op that runs ``dag_id`` in ``airflow_instance``, waits, and outputs the Airflow run id.

    A failed run fails the op (:class:`dagster.Failure`); a run still going after ``timeout``
    seconds raises :class:`AirflowRunTimeout`.
    """

    @op(name=name or _op_name(airflow_instance, dag_id), out=Out(str, description="The Airflow run id"))
    def _trigger(context: OpExecutionContext) -> Output[str]:
        metadata = run_dag_and_wait(
            airflow_instance, dag_id, conf=conf, timeout=timeout, poll_interval=poll_interval, log=context.log
        )
        return Output(str(metadata["airflow/run_id"]), metadata=metadata)

    return _trigger


def _op_name(airflow_instance: AirflowInstance, dag_id: str) -> str:
    safe = "".join(char if char.isalnum() or char == "_" else "_" for char in dag_id)
    return f"trigger_{airflow_instance.name}__{safe}"


def _run_url(airflow_instance: AirflowInstance, dag_id: str, run_id: str) -> str:
    base = f"{airflow_instance.webserver_url}/dags/{quote(dag_id, safe='')}"
    client = airflow_instance.rest
    if client is not None and client.api_version == "v1":
        return f"{base}/grid?dag_run_id={quote(run_id, safe='')}"
    return f"{base}/runs/{quote(run_id, safe='')}"
