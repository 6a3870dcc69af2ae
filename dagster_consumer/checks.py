"""Asset checks that make Airflow failures red in Dagster: the catalog, the asset page, the lineage graph.

Dagster colours an asset by its checks, not by its observations. Each task-mapped asset gets the
check ``airflow_task_succeeded`` and each DAG asset and DAG-mapped asset ``airflow_run_succeeded``.
The sensor records an evaluation with every outcome it records:

* passed when the task (or the DAG run) succeeded;
* failed, severity ERROR, when it failed, or the task was ``upstream_failed``;
* failed, severity WARN, when the task is up for retry (yellow: Airflow tries again);
* nothing for ``running``, ``skipped`` and ``removed``: the last outcome stands.

Dagster shows a check's latest stored evaluation, so an outcome that arrives late (a spool flushed
hours later, a replay, a gap repair) must not overwrite a newer one: :func:`newest_evaluations`
keeps, per check, only an evaluation newer in Airflow time than the one already stored.

The checks are declared (so the UI shows them before their first evaluation) by one
``multi_asset_check`` per Airflow instance. They are recorded from Airflow's events, not executed
in Dagster: executing one from the UI fails with a message that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    Failure,
    multi_asset_check,
)

from airstream.schemas import DagRunEvent, Event

TASK_CHECK_NAME = "airflow_task_succeeded"
RUN_CHECK_NAME = "airflow_run_succeeded"

_CHECK_METADATA_KEYS = (
    "airflow/state",
    "airflow/run_id",
    "airflow/task_id",
    "airflow/try_number",
    "airflow/map_index",
    "airflow/tasks",
    "airflow/failed_tasks",
    "airflow/url",
    "airflow/timestamp",  # when Airflow reached the state: what orders outcomes (see newest_evaluations)
    "airstream/event_id",  # last, as on the records: what deduplication and tests match on
)


def state_check_specs(
    *, task_mapped: Iterable[AssetKey], run_mapped: Iterable[AssetKey], dag_assets: Iterable[AssetKey]
) -> list[AssetCheckSpec]:
    """The check specs: ``airflow_task_succeeded`` on each task-mapped asset,
    ``airflow_run_succeeded`` on each DAG asset and DAG-mapped asset; each key once per check."""
    specs: dict[tuple[AssetKey, str], AssetCheckSpec] = {}
    for key in task_mapped:
        specs.setdefault(
            (key, TASK_CHECK_NAME),
            AssetCheckSpec(
                name=TASK_CHECK_NAME,
                asset=key,
                description="Fails when the Airflow task that produces this asset fails (red) or is up for "
                "retry (yellow); passes when it succeeds. Recorded from Airflow's events by airstream.",
            ),
        )
    for key in [*dag_assets, *run_mapped]:
        specs.setdefault(
            (key, RUN_CHECK_NAME),
            AssetCheckSpec(
                name=RUN_CHECK_NAME,
                asset=key,
                description="Fails when the Airflow DAG run fails; passes when it succeeds. Recorded from "
                "Airflow's events by airstream.",
            ),
        )
    return list(specs.values())


def build_state_checks(instance_name: str, specs: list[AssetCheckSpec]) -> AssetChecksDefinition | None:
    """One ``multi_asset_check`` declaring ``specs`` for ``instance_name``, or ``None`` without specs.

    Executing it fails with :class:`dagster.Failure`: the sensor records these checks from
    Airflow's events.
    """
    if not specs:
        return None

    @multi_asset_check(
        specs=specs,
        name=f"{instance_name}__airflow_state_checks",
        description=f"The outcomes of the Airflow instance {instance_name!r}'s tasks and DAG runs, recorded by "
        "airstream's sensor.",
        can_subset=True,
    )
    def airflow_state_checks() -> Iterator[AssetCheckResult]:
        raise Failure(
            description=(
                f"These checks are recorded from the Airflow instance {instance_name!r}'s events by the sensor "
                f"{instance_name}__airflow_event_sensor, not executed in Dagster: run the Airflow task or DAG "
                "again to re-evaluate them."
            )
        )
        yield  # a generator, as Dagster expects of a check with several specs

    return airflow_state_checks


def check_evaluation(
    key: AssetKey, event: Event, metadata: Mapping[str, Any], description: str
) -> AssetCheckEvaluation | None:
    """The evaluation of ``key``'s check that ``event`` decides, or ``None`` (running, skipped, removed)."""
    verdict = _verdict(event.state)
    if verdict is None:
        return None
    passed, severity = verdict
    name = RUN_CHECK_NAME if isinstance(event, DagRunEvent) else TASK_CHECK_NAME
    return AssetCheckEvaluation(
        asset_key=key,
        check_name=name,
        passed=passed,
        severity=severity,
        description=description,
        metadata={k: metadata[k] for k in _CHECK_METADATA_KEYS if k in metadata},
    )


AnyAssetEvent = TypeVar("AnyAssetEvent")


def newest_evaluations(
    asset_events: Sequence[AnyAssetEvent], stored_time: Callable[[AssetCheckKey], float | None]
) -> list[AnyAssetEvent]:
    """``asset_events`` without the check evaluations that are not the newest outcome of their check.

    Per check, only the evaluation with the latest ``airflow/timestamp`` is kept, and only if it is
    newer than the stored one (``stored_time(key)``: the ``airflow/timestamp`` of the latest stored
    evaluation, or ``None``). Records (materializations, observations) are all kept, in order.

    Example::

        events = newest_evaluations(outcome.asset_events, stored_check_time(context.instance))
    """
    newest: dict[AssetCheckKey, tuple[float, int]] = {}
    for position, event in enumerate(asset_events):
        if isinstance(event, AssetCheckEvaluation):
            time = evaluation_time(event.metadata)
            if event.asset_check_key not in newest or time >= newest[event.asset_check_key][0]:
                newest[event.asset_check_key] = (time, position)
    keep = {
        position for key, (time, position) in newest.items() if (stored := stored_time(key)) is None or time >= stored
    }
    return [e for i, e in enumerate(asset_events) if not isinstance(e, AssetCheckEvaluation) or i in keep]


def stored_check_time(instance: Any) -> Callable[[AssetCheckKey], float | None]:
    """``stored_time`` for :func:`newest_evaluations`, read from a Dagster instance."""

    def stored_time(key: AssetCheckKey) -> float | None:
        record = instance.get_latest_asset_check_evaluation_record(key)
        evaluation = record.event.dagster_event.event_specific_data if record and record.event else None
        return evaluation_time(evaluation.metadata) if isinstance(evaluation, AssetCheckEvaluation) else None

    return stored_time


def evaluation_time(metadata: Mapping[str, Any]) -> float:
    """The ``airflow/timestamp`` of an evaluation's metadata (0 when missing: older than any)."""
    value = metadata.get("airflow/timestamp")
    value = getattr(value, "value", value)
    return float(value) if isinstance(value, int | float) else 0.0


def _verdict(state: str) -> tuple[bool, AssetCheckSeverity] | None:
    if state == "success":
        return True, AssetCheckSeverity.ERROR
    if state in ("failed", "upstream_failed"):
        return False, AssetCheckSeverity.ERROR
    if state == "up_for_retry":
        return False, AssetCheckSeverity.WARN
    return None
