"""On an Airflow 3.3 of its own (the session's Airflows hold the 4 observation DAGs): a gap-repair
sweep asks the same number of requests for runs of 10 DAGs and of 100, and a retried task's
earlier try gets the id the listener gave it.

Its DAGs folder holds one generated file defining 100 one-task DAGs, and a DAG whose task fails
once and succeeds on its retry; the API is behind a counting proxy, and the listener publishes to a
topic of its own.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airstream.dagster_consumer import KafkaEventSource
from airstream.dagster_consumer.rest import AirflowRestClient, TokenAuthBackend
from airstream.dagster_consumer.sources.rest import RestEventSource
from airstream.schemas import Event, EventType
from devstack.airflow import PASSWORD, USERNAME, AirflowApi, airflow_env, start_airflow
from devstack.broker import Broker, create_topic
from devstack.counting_proxy import CountingProxy

pytestmark = pytest.mark.integration

INSTANCE = "many"
DAG_COUNT = 100
GENERATED_DAGS = f'''"""{DAG_COUNT} one-task DAGs (written by test_rest_source_own_airflow.py)."""
from datetime import datetime, timezone

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for number in range({DAG_COUNT}):
    with DAG(dag_id=f"generated_{{number:03}}", schedule=None, catchup=False,
             start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:
        EmptyOperator(task_id="only")
    globals()[dag.dag_id] = dag
'''
RETRYING_DAG = '''"""A task that fails on its first try and succeeds on its retry (written by the REST tests)."""
from datetime import datetime, timedelta, timezone

from airflow.sdk import DAG, get_current_context, task

with DAG(dag_id="retrying", schedule=None, catchup=False, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)):

    @task(retries=1, retry_delay=timedelta(seconds=1))
    def flaky() -> None:
        if get_current_context()["ti"].try_number == 1:
            raise RuntimeError("the first try fails")

    flaky()
'''


@dataclass(frozen=True)
class OwnAirflow:
    url: str  # the counting proxy's
    proxy: CountingProxy
    api: AirflowApi
    topic: str
    bootstrap_servers: str

    def client(self) -> AirflowRestClient:
        return AirflowRestClient(TokenAuthBackend(self.url, USERNAME, PASSWORD))


@pytest.fixture(scope="module")
def own_airflow(broker: Broker, work_dir: Path) -> Iterator[OwnAirflow]:
    home = work_dir / f"many-dags-{uuid.uuid4().hex[:6]}"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "generated.py").write_text(GENERATED_DAGS)
    (dags / "retrying.py").write_text(RETRYING_DAG)
    topic = f"airstream-many-dags-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap_servers, topic)
    env = airflow_env(
        home, bootstrap_servers=broker.bootstrap_servers, topic=topic, instance_name=INSTANCE, dags_folder=dags
    )
    with (
        start_airflow(env, log_dir=home / "logs", expected_dags=DAG_COUNT, timeout=240) as airflow,
        CountingProxy(airflow.url) as proxy,
    ):
        yield OwnAirflow(proxy.url, proxy, airflow.api(), topic, broker.bootstrap_servers)


def _run(api: AirflowApi, dag_ids: list[str]) -> dict[str, str]:
    run_ids = {dag_id: api.trigger(dag_id) for dag_id in dag_ids}
    return {dag_id: api.wait_for_run(dag_id, run_id) for dag_id, run_id in run_ids.items()}


def test_a_sweeps_requests_do_not_grow_from_10_to_100_dags(own_airflow: OwnAirflow) -> None:
    dag_ids = sorted(dag_id for dag_id in own_airflow.api.dag_ids() if dag_id.startswith("generated_"))
    assert len(dag_ids) == DAG_COUNT
    client = own_airflow.client()
    t0 = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    start = {"mark": t0, "next": t0}
    source = RestEventSource(client, INSTANCE, max_runs_per_read=1000)
    source.read(start)  # the version and the asset list: once per process

    counts: dict[int, Counter[tuple[str, str]]] = {}
    dags_read: dict[int, int] = {}
    for upto, batch_of_dags in ((10, dag_ids[:10]), (100, dag_ids[10:])):
        assert set(_run(own_airflow.api, batch_of_dags).values()) == {"success"}
        with own_airflow.proxy.counting() as window:
            batch = source.read(start)
        counts[upto] = Counter({key: n for key, n in window.counts.items() if "/api/" in key[1]})
        dags_read[upto] = len({event.dag_id for event in batch.events})

    print(f"\nsweep requests for runs of 10 DAGs: {dict(counts[10])}; of 100 DAGs: {dict(counts[100])}")
    assert dags_read == {10: 10, 100: 100}
    assert counts[10] == counts[100]
    assert sum(counts[100].values()) == 2, "one run list and one task-instance list"
    client.close()


def _topic_events(own_airflow: OwnAirflow, run_id: str, until: str, timeout: float = 60) -> list[Event]:
    """The run's events on the topic, read until ``until`` (an event id) is among them."""
    source = KafkaEventSource(bootstrap_servers=own_airflow.bootstrap_servers, topic=own_airflow.topic)
    position = None
    found: list[Event] = []
    deadline = time.monotonic() + timeout
    while until not in {event.event_id for event in found} and time.monotonic() < deadline:
        batch = source.read(position)
        position = batch.position
        found += [event for event in batch.events if event.run_id == run_id]
        time.sleep(0.5)
    return found


def test_a_retried_tasks_earlier_try_has_the_listeners_id(own_airflow: OwnAirflow) -> None:
    t0 = datetime.now(timezone.utc) - timedelta(seconds=1)
    run_id = own_airflow.api.trigger("retrying")
    assert own_airflow.api.wait_for_run("retrying", run_id) == "success"
    client = own_airflow.client()
    batch = RestEventSource(client, INSTANCE).read({"mark": t0.isoformat(), "next": t0.isoformat()})
    from_rest = {event.event_id: event for event in batch.events if event.run_id == run_id}
    client.close()
    kinds = sorted((e.event_type.value, getattr(e, "try_number", None)) for e in from_rest.values())
    assert kinds == [("dag_run.success", None), ("task_instance.success", 2), ("task_instance.up_for_retry", 1)]

    run_end = next(e.event_id for e in from_rest.values() if e.event_type == EventType.DAG_RUN_SUCCESS)
    on_topic = {
        event.event_id
        for event in _topic_events(own_airflow, run_id, until=run_end)
        if event.event_type not in (EventType.TASK_INSTANCE_RUNNING, EventType.DAG_RUN_RUNNING)
    }
    assert set(from_rest) == on_topic, "the same terminal facts, the same ids, the inferred retry included"
