"""RestEventSource against an in-memory REST API: the listener's ids, positions, bounded reads."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from airstream.airflow_listener.event_builder import dag_run_event, task_instance_event
from airstream.airflow_listener.finished_run import read_finished_run
from airstream.dagster_consumer import EventSourceUnavailable
from airstream.dagster_consumer.rest.records import AirflowAssetRecord, DagRunRecord, TaskInstanceRecord
from airstream.dagster_consumer.sources.rest import RestEventSource
from airstream.schemas import AssetUpdatedEvent, DagRunEvent, Event, EventType, TaskInstanceEvent
from devstack.fake_rest import T0, FakeRestApi, run_record, ti_record

NOW = T0 + timedelta(hours=1)
ORDERS = "s3://warehouse/orders.parquet"


def source(api: FakeRestApi, **options: Any) -> RestEventSource:
    options.setdefault("clock", lambda: NOW)
    return RestEventSource(api, "prod", **options)


def ids(events: list[Event]) -> set[str]:
    return {event.event_id for event in events}


# --- the same facts, the same ids as the listener ------------------------------------------------

# (task_id, state, map_index, try_number): every terminal state, retries, mapped tasks, and
# states the scheduler sets without a task process (try number 0).
FACTS = [
    ("start", "success", -1, 1),
    ("branch_right", "skipped", -1, 0),
    ("flaky", "success", -1, 3),
    ("boom", "failed", -1, 2),
    ("after_boom", "upstream_failed", -1, 0),
    ("gone", "removed", -1, 1),
    ("process", "success", 0, 1),
    ("process", "success", 1, 1),
    ("process", "failed", 2, 1),
    ("write", "success", -1, 1),
    ("never", None, -1, 0),
]


def _listener_events(run_state: str) -> list[Event]:
    """What the listener publishes for FACTS: the task processes' retries and the finished run."""
    outlets = {"write": SimpleNamespace(outlets=[SimpleNamespace(uri=ORDERS, name="orders")])}

    class Dag:
        task_ids = sorted({task_id for task_id, *_ in FACTS if task_id != "gone"})

        def get_task(self, task_id: str) -> Any:
            return outlets.get(task_id, SimpleNamespace(outlets=[]))

    def ti(task_id: str, state: str | None, map_index: int, try_number: int) -> SimpleNamespace:
        return SimpleNamespace(
            dag_id="etl", run_id="manual__1", task_id=task_id, map_index=map_index, try_number=try_number,
            state=state, start_date=T0, end_date=T0, hostname="", operator="PythonOperator",
        )  # fmt: skip

    tis = [ti(*fact) for fact in FACTS]
    dag_run = SimpleNamespace(
        dag_id="etl", run_id="manual__1", logical_date=T0, run_type="manual", clear_number=0, start_date=T0,
        end_date=T0, get_task_instances=lambda session=None: tis, dag=Dag(),
    )  # fmt: skip
    events: list[Event] = []
    for task_id, _, map_index, try_number in FACTS:  # earlier tries end in the task process as up_for_retry
        for attempt in range(1, try_number):
            events.append(
                task_instance_event("prod", "failed", ti(task_id, "up_for_retry", map_index, attempt), dag_run=dag_run)
            )
    finished = read_finished_run("prod", dag_run)
    events.extend(finished.events)
    events.append(dag_run_event("prod", run_state, dag_run, finished.task_ids))
    return events


def _rest_api(run_state: str) -> FakeRestApi:
    return FakeRestApi(
        runs=[run_record(state=run_state)],
        task_instances=[ti_record(t, s, map_index=m, try_number=n) for t, s, m, n in FACTS],
        assets=[
            AirflowAssetRecord(uri=ORDERS, name="orders", producing_tasks=(("etl", "write"),)),
            AirflowAssetRecord(uri="s3://elsewhere", producing_tasks=(("other_dag", "write"),)),
        ],
    )


@pytest.mark.parametrize("run_state", ["success", "failed"])
def test_the_rest_source_yields_the_listeners_event_ids_for_the_same_facts(run_state: str) -> None:
    listener = _listener_events(run_state)
    rest = source(_rest_api(run_state)).read(None).events
    assert ids(rest) == ids(listener)
    assert len(rest) == len(ids(rest)), "each fact once"
    kinds = sorted(event.event_type.value for event in rest)
    assert kinds.count("task_instance.up_for_retry") == 3  # flaky tries 1 and 2, boom try 1
    assert kinds.count("asset.updated") == 1
    (run_event,) = [e for e in rest if isinstance(e, DagRunEvent)]
    assert run_event.clear_number == 0
    assert run_event.task_ids == sorted({t for t, *_ in FACTS if t != "gone"})


def test_the_earlier_tries_up_for_retry_are_marked_inferred() -> None:
    batch = source(_rest_api("success")).read(None)
    inferred = {(e.task_id, e.try_number) for e in batch.events if e.event_id in batch.inferred}  # type: ignore[union-attr]
    assert inferred == {("flaky", 1), ("flaky", 2), ("boom", 1)}


def test_events_carry_the_runs_facts_and_the_airflow_version() -> None:
    api = _rest_api("success")
    api.airflow_version = "2.11.2"
    events = source(api).read(None).events
    success = next(e for e in events if isinstance(e, TaskInstanceEvent) and e.task_id == "start")
    assert (success.logical_date, success.run_type, success.airflow_version) == (T0, "manual", "2.11.2")
    (update,) = [e for e in events if isinstance(e, AssetUpdatedEvent)]
    assert (update.uri, update.name, update.task_id, update.logical_date) == (ORDERS, "orders", "write", T0)
    retry = next(e for e in events if e.event_type == EventType.TASK_INSTANCE_UP_FOR_RETRY)
    assert retry.end_date is None, "an earlier try's dates are not in the task instance's row"


def test_a_cleared_and_rerun_dag_run_has_the_id_of_its_first_end() -> None:
    """clear_number is not in the REST API: the REST source uses 0 (documented)."""
    rerun = SimpleNamespace(dag_id="etl", run_id="manual__1", clear_number=1)
    (event,) = [e for e in source(_rest_api("success")).read(None).events if isinstance(e, DagRunEvent)]
    assert event.event_id != dag_run_event("prod", "success", rerun).event_id
    assert (
        event.event_id == dag_run_event("prod", "success", SimpleNamespace(dag_id="etl", run_id="manual__1")).event_id
    )


def test_unfinished_task_instances_of_a_finished_run_yield_only_their_earlier_tries() -> None:
    api = FakeRestApi(
        runs=[run_record(state="failed")],
        task_instances=[ti_record("a", None, try_number=0), ti_record("b", "scheduled", try_number=2)],
    )
    events = source(api).read(None).events
    assert [(e.event_type, getattr(e, "try_number", None)) for e in events] == [
        (EventType.TASK_INSTANCE_UP_FOR_RETRY, 1),
        (EventType.DAG_RUN_FAILED, None),
    ]


def test_same_run_id_in_two_dags_is_kept_apart() -> None:
    api = FakeRestApi(
        runs=[run_record("etl", "manual__1"), run_record("other", "manual__2", state="running")],
        task_instances=[
            ti_record("t", "success", dag_id="etl"),
            ti_record("t", "success", dag_id="other", run_id="manual__1"),
        ],
    )
    events = source(api).read(None).events
    assert sorted((e.dag_id, e.event_type.value) for e in events) == [
        ("etl", "dag_run.success"),
        ("etl", "task_instance.success"),
    ]


# --- position: a high-water mark on end dates, with an overlap ------------------------------------


def test_first_read_looks_back_and_the_next_one_starts_an_overlap_before_the_mark() -> None:
    api = FakeRestApi(runs=[run_record(ended=timedelta(minutes=10))], task_instances=[ti_record("t", "success")])
    rest = source(api, overlap=timedelta(minutes=5), initial_lookback=timedelta(hours=2))
    first = rest.read(None)
    assert api.run_queries[0]["end_date_gte"] == NOW - timedelta(hours=2)
    assert first.position["mark"] == (T0 + timedelta(minutes=10)).isoformat()
    assert first.caught_up

    rest.read(first.position)
    assert api.run_queries[-1]["end_date_gte"] == T0 + timedelta(minutes=5)


def test_a_run_committed_late_inside_the_overlap_is_read_and_the_rest_again_for_deduplication() -> None:
    api = FakeRestApi(runs=[run_record("etl", "r1", ended=timedelta(minutes=10))])
    rest = source(api, overlap=timedelta(minutes=5))
    first = rest.read(None)
    # A run that ended before the mark, but whose row was committed after the first read.
    api.runs.append(run_record("etl", "late", ended=timedelta(minutes=7)))
    second = rest.read(first.position)
    assert sorted(e.run_id for e in second.events) == ["late", "r1"]
    assert second.position["mark"] == first.position["mark"], "the mark never goes back"


def test_without_new_runs_the_mark_stays_and_without_any_run_the_lookback_start_is_kept() -> None:
    api = FakeRestApi()
    rest = source(api, initial_lookback=timedelta(hours=1))
    first = rest.read(None)
    assert first.events == [] and first.caught_up
    assert datetime.fromisoformat(first.position["mark"]) == T0
    assert rest.read(first.position).position == first.position


def test_no_lookback_reads_everything_the_api_keeps() -> None:
    api = FakeRestApi(runs=[run_record(ended=-timedelta(days=400))])
    batch = source(api, initial_lookback=None).read(None)
    assert api.run_queries[0]["end_date_gte"] is None
    assert len(batch.events) == 1


def test_an_unreadable_position_says_to_reset_the_cursor() -> None:
    with pytest.raises(EventSourceUnavailable, match="reset"):
        source(FakeRestApi()).read({"next": "yesterday", "mark": "yesterday"})


def test_api_errors_become_source_unavailable_naming_the_source() -> None:
    api = FakeRestApi()
    api.fail_with = ConnectionError("connection refused")
    with pytest.raises(EventSourceUnavailable, match="connection refused"):
        source(api).read(None)


# --- bounded reads, a fixed number of calls --------------------------------------------------------


def test_reads_are_bounded_and_catch_up_over_several_reads_without_losing_a_run() -> None:
    runs = [run_record("etl", f"r{i:03}", ended=timedelta(seconds=i)) for i in range(250)]
    api = FakeRestApi(runs=runs, task_instances=[ti_record("t", "success", run_id=run.run_id) for run in runs])
    rest = source(api, max_runs_per_read=100, overlap=timedelta(minutes=5))
    seen: set[str] = set()
    position = None
    batches = []
    for _ in range(5):
        batch = rest.read(position)
        batches.append(batch)
        seen |= ids(batch.events)
        position = batch.position
        assert len({e.run_id for e in batch.events}) <= 100
    assert [b.caught_up for b in batches[:3]] == [False, False, True]
    assert len(seen) == 500, "every run's task and DAG-run event, once each after deduplication"


def test_a_run_created_early_that_ends_late_is_neither_skipped_nor_lost_when_reads_are_bounded() -> None:
    # The API lists runs in id order: "long" was created first and ended last.
    runs = [run_record("etl", "long", ended=timedelta(minutes=30))]
    runs += [run_record("etl", f"short{i}", ended=timedelta(minutes=i)) for i in range(4)]
    rest = source(FakeRestApi(runs=runs), max_runs_per_read=2)
    position, order = None, []
    for _ in range(4):
        batch = rest.read(position)
        order += [e.run_id for e in batch.events if e.run_id not in order]
        position = batch.position
    assert order == ["short0", "short1", "short2", "short3", "long"], "earliest-ending first, none skipped"


def test_a_page_of_runs_sharing_one_end_date_does_not_stall_the_source() -> None:
    runs = [run_record("etl", f"r{i}") for i in range(3)] + [run_record("etl", "later", ended=timedelta(seconds=1))]
    rest = source(FakeRestApi(runs=runs), max_runs_per_read=3)
    first = rest.read(None)
    second = rest.read(first.position)  # the same page again: the source then moves past that instant
    third = rest.read(second.position)
    assert {e.run_id for e in second.events} == {"r0", "r1", "r2"}
    assert "later" in {e.run_id for e in third.events}


@pytest.mark.parametrize("dag_count", [10, 100])
def test_one_read_makes_two_batch_calls_whatever_the_number_of_dags(dag_count: int) -> None:
    runs = [run_record(f"dag_{n}", "manual__1", ended=timedelta(seconds=n)) for n in range(dag_count)]
    api = FakeRestApi(runs=runs, task_instances=[ti_record("t", "success", dag_id=run.dag_id) for run in runs])
    rest = source(api, max_runs_per_read=1000)
    first = rest.read(None)
    assert api.batch_calls() == 2
    assert (api.calls["server_info"], api.calls["list_assets"]) == (1, 1), "once per process, cached assets"
    rest.read(first.position)
    assert api.batch_calls() == 4
    assert (api.calls["server_info"], api.calls["list_assets"]) == (1, 1)


def test_no_ended_run_means_one_call() -> None:
    api = FakeRestApi()
    rest = source(api)
    first = rest.read(None)
    assert dict(api.calls) == {"list_dag_runs": 1, "server_info": 1, "list_assets": 1}, "the first read of a process"
    rest.read(first.position)
    assert dict(api.calls) == {"list_dag_runs": 2, "server_info": 1, "list_assets": 1}


def test_running_runs_finished_task_instances_are_reported_when_asked() -> None:
    api = FakeRestApi(
        runs=[run_record("etl", "live", state="running")],
        task_instances=[
            ti_record("done", "success", run_id="live"),
            ti_record("retrying", "running", run_id="live", try_number=2),
            ti_record("busy", "running", run_id="live"),
        ],
    )
    assert source(api).read(None).events == [], "by default only ended runs are read"
    events = source(api, report_running_runs=True).read(None).events
    assert sorted((e.event_type.value, getattr(e, "task_id", None)) for e in events) == [
        ("task_instance.success", "done"),
        ("task_instance.up_for_retry", "retrying"),
    ]
    assert api.calls["list_dag_runs"] == 3  # 1 + 2 (ended and running)


def test_asset_updates_can_be_turned_off() -> None:
    api = _rest_api("success")
    events = source(api, asset_updates=False).read(None).events
    assert not [e for e in events if isinstance(e, AssetUpdatedEvent)]
    assert api.calls["list_assets"] == 0


def test_record_types_are_the_protocols() -> None:
    # The fake speaks the Protocol the real client implements (mypy checks the assignment).
    from airstream.dagster_consumer.rest.records import AirflowRestApi

    api: AirflowRestApi = FakeRestApi()
    assert isinstance(api.list_dag_runs(), list)
    assert DagRunRecord and TaskInstanceRecord


def test_ended_runs_are_read_a_hundred_per_call_and_all_in_one_read_when_time_allows() -> None:
    runs = [run_record("etl", f"r{i:03}", ended=timedelta(seconds=i)) for i in range(250)]
    api = FakeRestApi(runs=runs, task_instances=[ti_record("t", "success", run_id=run.run_id) for run in runs])
    batch = source(api).read(None)
    assert api.calls["list_task_instances"] == 3
    assert batch.caught_up
    assert len({e.run_id for e in batch.events}) == 250


def test_a_read_out_of_time_stops_after_its_first_call_and_continues_next_time() -> None:
    runs = [run_record("etl", f"r{i:03}", ended=timedelta(seconds=i)) for i in range(250)]
    api = FakeRestApi(runs=runs, task_instances=[ti_record("t", "success", run_id=run.run_id) for run in runs])
    rest = source(api, max_seconds_per_read=1e-9)  # time is up as soon as the first call returns
    first = rest.read(None)
    assert api.calls["list_task_instances"] == 1
    assert not first.caught_up
    assert {e.run_id for e in first.events} == {f"r{i:03}" for i in range(100)}, "the earliest-ending hundred"
    seen = ids(first.events)
    position = first.position
    for _ in range(3):
        batch = rest.read(position)
        seen |= ids(batch.events)
        position = batch.position
    assert len(seen) == 500, "every run's task and DAG-run event, none lost"


def test_max_seconds_per_read_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_seconds_per_read"):
        source(FakeRestApi(), max_seconds_per_read=0)
