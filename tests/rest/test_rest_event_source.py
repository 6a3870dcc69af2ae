"""The REST source against real Airflow 3.3 and 2.11: fallback polling records what the event path
records, a gap is repaired exactly once, and a sweep's request count does not grow with the DAGs.

Each Airflow is shared by the session (``airflow3_rest``, ``airflow2_rest``): this module triggers
its own runs after a start time ``t0`` and reads only what ended after it (tests run one at a time).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from dagster import DagsterInstance, SensorDefinition, build_sensor_context

from airstream.dagster_consumer import AirflowInstance, AssetMappings, KafkaEventSource, build_airflow_event_sensor
from airstream.dagster_consumer import sensor as sensor_module
from airstream.dagster_consumer.sources.base import EventBatch, EventSource, Position
from airstream.dagster_consumer.sources.rest import RestEventSource
from airstream.schemas import Event, EventType
from devstack.dagster import RecordedAssetEvent, recorded_asset_events
from devstack.rest_stack import RestAirflow

pytestmark = pytest.mark.integration

TERMINAL_EVENT_TYPES = {
    event_type.value
    for event_type in EventType
    if event_type not in (EventType.TASK_INSTANCE_RUNNING, EventType.DAG_RUN_RUNNING)
}
RunKey = tuple[str, str]


@dataclass
class Observed:
    """The runs this module triggered on one Airflow, and what one sweep cost over them."""

    af: RestAirflow
    client: Any
    t0: datetime
    runs: dict[RunKey, str] = field(default_factory=dict)  # (dag_id, run_id) → final state
    sweep_counts: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)  # "1 DAG"/"all DAGs" → requests
    sweep_runs: dict[str, int] = field(default_factory=dict)

    def rest_source(self, **options: Any) -> RestEventSource:
        return RestEventSource(self.client, self.af.name, **options)

    def start_position(self) -> Position:
        return {"mark": self.t0.isoformat(), "next": self.t0.isoformat()}


def _client(af: RestAirflow) -> Any:
    from airstream.dagster_consumer.rest.client import AirflowRestClient

    return AirflowRestClient(af.auth_backend())


def _run_all(af: RestAirflow, dag_ids: list[str]) -> dict[RunKey, str]:
    api = af.admin_api()
    triggered = {(dag_id, api.trigger(dag_id)) for dag_id in dag_ids}
    return {(dag_id, run_id): api.wait_for_run(dag_id, run_id) for dag_id, run_id in sorted(triggered)}


def _wait_for_asset_triggered_runs(observed: Observed, timeout: float = 120) -> None:
    """The consumer DAG's run the producer's asset update started (not triggered by the test)."""
    api = observed.af.admin_api()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for run in api.dag_runs("observe_asset_consumer"):
            started = datetime.fromisoformat(str(run.get("start_date") or "1970-01-01T00:00:00+00:00"))
            if started >= observed.t0:
                run_id = str(run["dag_run_id"])
                observed.runs[("observe_asset_consumer", run_id)] = api.wait_for_run("observe_asset_consumer", run_id)
                return
        time.sleep(1)
    raise AssertionError("the producer's asset update did not start observe_asset_consumer")


@pytest.fixture(scope="module", params=["airflow3_rest", "airflow2_rest"])
def observed(request: pytest.FixtureRequest) -> Iterator[Observed]:
    """Runs of every observation DAG on one Airflow, and the requests of a sweep over 1 DAG's
    runs and over all of them (measured between the two batches of runs)."""
    af: RestAirflow = request.getfixturevalue(request.param)
    observed = Observed(af=af, client=_client(af), t0=datetime.now(timezone.utc) - timedelta(seconds=1))
    warm = observed.rest_source()
    warm.read(observed.start_position())  # the version and the asset list are read once per process

    observed.runs.update(_run_all(af, ["observe_branching"]))
    for label in ("1 DAG", "all DAGs"):
        if label == "all DAGs":
            observed.runs.update(_run_all(af, ["observe_failures", "observe_asset_producer"]))
            _wait_for_asset_triggered_runs(observed)
        with af.proxy.counting() as window:
            batch = warm.read(observed.start_position())
        observed.sweep_counts[label] = window.counts
        observed.sweep_runs[label] = len({(e.dag_id, e.run_id) for e in batch.events})
    yield observed
    close = getattr(observed.client, "close", None)
    if callable(close):
        close()


# --- helpers: sensors into real Dagster instances --------------------------------------------------


class SkippingEventSource(EventSource):
    """The topic with some runs' events gone, as if they had never been published."""

    def __init__(self, inner: EventSource, missing: set[RunKey]) -> None:
        self.inner = inner
        self.missing = missing

    def read(self, position: Position | None) -> EventBatch:
        batch = self.inner.read(position)
        batch.events = [e for e in batch.events if (e.dag_id, e.run_id) not in self.missing]
        return batch

    def describe(self) -> str:
        return f"{self.inner.describe()} without {len(self.missing)} run(s)"


def _kafka(af: RestAirflow) -> KafkaEventSource:
    return KafkaEventSource(bootstrap_servers=af.bootstrap_servers, topic=af.topic, max_seconds_per_tick=5)


def _tick(sensor_def: SensorDefinition, instance: DagsterInstance, cursor: str | None) -> str | None:
    """One evaluation whose asset events are stored, as the daemon does."""
    result = sensor_def.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor))
    for asset_event in result.asset_events:
        instance.report_runless_asset_event(asset_event)
    return result.cursor


def _terminal_records(instance: DagsterInstance, runs: dict[RunKey, str]) -> list[tuple[str, str]]:
    """(asset key, event id) of every stored record of a terminal event of ``runs``."""
    records: list[RecordedAssetEvent] = recorded_asset_events(instance)
    return sorted(
        (record.asset_key, str(record.metadata["airstream/event_id"]))
        for record in records
        if record.metadata.get("airflow/event_type") in TERMINAL_EVENT_TYPES
        and (record.metadata.get("airflow/dag_id"), record.metadata.get("airflow/run_id")) in runs
    )


def _record_event_path(observed: Observed, instance: DagsterInstance, expected: int, timeout: float = 90) -> None:
    """Tick the Kafka-only sensor until ``expected`` terminal records of the runs are stored (the
    listener's scheduler-side events go out from a background thread)."""
    sensor_def = build_airflow_event_sensor(
        airflow_instance=AirflowInstance(name=observed.af.name, event_source=_kafka(observed.af)),
        mappings=AssetMappings(),
    )
    cursor = None
    deadline = time.monotonic() + timeout
    while True:
        cursor = _tick(sensor_def, instance, cursor)
        if len(_terminal_records(instance, observed.runs)) >= expected or time.monotonic() > deadline:
            return
        time.sleep(1)


def _rest_only(af: RestAirflow) -> AirflowInstance:
    """The fallback's configuration: REST access, no event source."""
    return AirflowInstance(name=af.name, auth_backend=af.auth_backend())


def _rest_events(observed: Observed) -> list[Event]:
    events = observed.rest_source().read(observed.start_position()).events
    return [e for e in events if (e.dag_id, e.run_id) in observed.runs]


# --- tests -----------------------------------------------------------------------------------------


def test_fallback_polling_records_the_same_terminal_events_as_the_event_path(observed: Observed) -> None:
    with DagsterInstance.ephemeral() as from_rest, DagsterInstance.ephemeral() as from_events:
        rest_only = _rest_only(observed.af)
        sensor_def = build_airflow_event_sensor(
            airflow_instance=rest_only,
            mappings=AssetMappings(),
            # The instance's own client; the first poll looks back to this module's start only.
            rest_source=RestEventSource(
                rest_only.require_rest(), rest_only.name, initial_lookback=datetime.now(timezone.utc) - observed.t0
            ),
        )
        cursor = None
        for _ in range(2):  # the second poll reads the overlap again: nothing new
            cursor = _tick(sensor_def, from_rest, cursor)
        polled = _terminal_records(from_rest, observed.runs)
        assert polled, "the fallback recorded the runs"
        assert len(polled) == len(set(polled)), "each record once"

        _record_event_path(observed, from_events, expected=len(polled))
        via_events = _terminal_records(from_events, observed.runs)

    print(f"\n{observed.af.name}: {len(polled)} terminal records from REST, {len(via_events)} from the topic")
    assert Counter(key for key, _ in polled) == Counter(key for key, _ in via_events)
    assert polled == via_events, "record by record: the same assets, the same event ids"
    states = Counter(observed.runs.values())
    assert states == Counter({"success": 3, "failed": 1})


def test_a_gap_is_repaired_exactly_once_scheduler_set_states_included(
    observed: Observed, monkeypatch: pytest.MonkeyPatch
) -> None:
    gap = {key for key in observed.runs if key[0] in ("observe_branching", "observe_failures")}
    clock = SimpleNamespace(now=time.time())
    monkeypatch.setattr(sensor_module, "_now", lambda: clock.now)

    with DagsterInstance.ephemeral() as reference, DagsterInstance.ephemeral() as repaired:
        expected = len([e for e in _rest_events(observed) if e.event_type.value in TERMINAL_EVENT_TYPES])
        _record_event_path(observed, reference, expected=expected)
        complete = _terminal_records(reference, observed.runs)

        sensor_def = build_airflow_event_sensor(
            airflow_instance=AirflowInstance(
                name=observed.af.name, event_source=SkippingEventSource(_kafka(observed.af), gap)
            ),
            mappings=AssetMappings(),
            rest_source=observed.rest_source(initial_lookback=datetime.now(timezone.utc) - observed.t0),
            gap_repair_interval=300,
        )
        context = build_sensor_context(instance=repaired, cursor=None)
        logged: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = logged.append  # type: ignore[method-assign]
        context.log.addHandler(handler)
        result = sensor_def.evaluate_tick(context)  # Kafka without the gap's runs, then the first sweep
        messages = [record.getMessage() for record in logged]
        for asset_event in result.asset_events:
            repaired.report_runless_asset_event(asset_event)
        cursor = result.cursor
        for step in (60, 300, 600):  # between sweeps, the next sweep, and one more
            clock.now += step
            cursor = _tick(sensor_def, repaired, cursor)
        recorded = _terminal_records(repaired, observed.runs)

    assert recorded == complete, "the gap's runs are recorded as the event path records them, once each"
    gap_states = {e.state for e in _rest_events(observed) if (e.dag_id, e.run_id) in gap}
    assert {"skipped", "upstream_failed", "success", "failed"} <= gap_states, "scheduler-set states are repaired"
    (sweep_line,) = [m for m in messages if "gap repair" in m]
    print(f"\n{observed.af.name}: {sweep_line}")
    assert " 0 gap-repaired" not in sweep_line


def test_a_sweep_costs_the_same_requests_for_one_dag_and_for_every_dag(observed: Observed) -> None:
    one, every = observed.sweep_counts["1 DAG"], observed.sweep_counts["all DAGs"]
    print(
        f"\n{observed.af.name} ({observed.af.api_version}): sweep over {observed.sweep_runs['1 DAG']} run(s) of 1 DAG: "
        f"{dict(one)}; over {observed.sweep_runs['all DAGs']} runs of {len({d for d, _ in observed.runs})} DAGs: "
        f"{dict(every)}"
    )
    assert observed.sweep_runs["all DAGs"] > observed.sweep_runs["1 DAG"]
    api_requests = {key: count for key, count in every.items() if "/api/" in key[1]}
    assert sum(api_requests.values()) == 2, "one run list and one task-instance list (one page each here)"
    assert {key: count for key, count in one.items() if "/api/" in key[1]} == api_requests
