"""Asset checks that make Airflow failures red in Dagster: the catalog, the asset page, the lineage graph.

Dagster colours an asset by its checks, not by its observations. Each task-mapped asset gets the
check ``airflow_task_succeeded`` and each DAG asset and DAG-mapped asset ``airflow_run_succeeded``.
The sensor records an evaluation with every outcome it records:

* passed when the task (or the DAG run) succeeded;
* failed, severity ERROR, when it failed, or the task was ``upstream_failed``;
* failed, severity WARN, when the task is up for retry (yellow: Airflow tries again);
* nothing for ``running``, ``skipped`` and ``removed``: the last outcome stands.

The checks are declared (so the UI shows them before their first evaluation) by one
``multi_asset_check`` per Airflow instance. They are recorded from Airflow's events, not executed
in Dagster: executing one from the UI fails with a message that says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from dagster import (
    AssetCheckEvaluation,
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


def _verdict(state: str) -> tuple[bool, AssetCheckSeverity] | None:
    if state == "success":
        return True, AssetCheckSeverity.ERROR
    if state in ("failed", "upstream_failed"):
        return False, AssetCheckSeverity.ERROR
    if state == "up_for_retry":
        return False, AssetCheckSeverity.WARN
    return None
