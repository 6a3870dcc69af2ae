"""A late outcome never overwrites a newer one on a state check (a unit test of checks.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dagster import AssetCheckEvaluation, AssetCheckKey, AssetKey, AssetObservation, instance_for_test

from airstream.dagster_consumer.checks import TASK_CHECK_NAME, newest_evaluations, stored_check_time
from airstream.dagster_consumer.mappings import AssetMappings
from airstream.dagster_consumer.translate import translate
from airstream.schemas import EventType, TaskInstanceEvent

ASSET = AssetKey("extracted")
CHECK = AssetCheckKey(ASSET, TASK_CHECK_NAME)
MAPPINGS = AssetMappings(by_task={("etl", "extract"): [ASSET]})
START = datetime(2026, 11, 2, tzinfo=timezone.utc)


def _outcome(event_type: EventType, *, hours: float, try_number: int = 1) -> list:
    start = START + timedelta(hours=hours)
    event = TaskInstanceEvent.new(
        instance="prod",
        event_type=event_type,
        state=event_type.state,
        dag_id="etl",
        run_id=f"run_{hours}",
        task_id="extract",
        try_number=try_number,
        start_date=start,
        end_date=start + timedelta(seconds=5),
        producer="test",
    )
    return translate(event, mappings=MAPPINGS)


def _evaluations(events: list) -> list[tuple[bool, str]]:
    return [(e.passed, e.metadata["airflow/run_id"].value) for e in events if isinstance(e, AssetCheckEvaluation)]


def test_within_a_batch_only_the_newest_outcome_per_check_is_kept() -> None:
    late_retry = _outcome(EventType.TASK_INSTANCE_UP_FOR_RETRY, hours=0)
    newer_success = _outcome(EventType.TASK_INSTANCE_SUCCESS, hours=15)
    kept = newest_evaluations(newer_success + late_retry, lambda key: None)
    assert _evaluations(kept) == [(True, "run_15")]
    # every record stays: the history is complete, only the colour follows the newest outcome
    assert [e for e in kept if not isinstance(e, AssetCheckEvaluation)] == [
        e for e in newer_success + late_retry if not isinstance(e, AssetCheckEvaluation)
    ]


def test_an_outcome_older_than_the_stored_one_is_not_evaluated_again() -> None:
    with instance_for_test() as instance:
        for event in _outcome(EventType.TASK_INSTANCE_SUCCESS, hours=15):
            instance.report_runless_asset_event(event)
        late = _outcome(EventType.TASK_INSTANCE_UP_FOR_RETRY, hours=0)
        assert _evaluations(newest_evaluations(late, stored_check_time(instance))) == []
        newer_failure = _outcome(EventType.TASK_INSTANCE_FAILED, hours=20)
        assert _evaluations(newest_evaluations(newer_failure, stored_check_time(instance))) == [(False, "run_20")]
        assert stored_check_time(instance)(AssetCheckKey(AssetKey("never_seen"), TASK_CHECK_NAME)) is None


def test_records_without_checks_pass_through() -> None:
    observation = AssetObservation(asset_key=ASSET)
    assert newest_evaluations([observation], lambda key: 0.0) == [observation]
