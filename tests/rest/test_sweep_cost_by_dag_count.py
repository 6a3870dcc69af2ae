"""A gap-repair sweep asks Airflow 3.3 the same number of requests for runs of 10 DAGs and of 100.

An Airflow of its own (the session's Airflows hold 4 DAGs): a copy of nothing but one generated DAG
file defining 100 one-task DAGs, behind a counting proxy. Each DAG runs once; the sweep reads the
runs of the first 10 DAGs, then of all 100, from the same position.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from airstream.dagster_consumer.rest import AirflowRestClient, TokenAuthBackend
from airstream.dagster_consumer.sources.rest import RestEventSource
from devstack.airflow import PASSWORD, USERNAME, AirflowApi, airflow_env, start_airflow
from devstack.broker import Broker, create_topic
from devstack.counting_proxy import CountingProxy

pytestmark = pytest.mark.integration

DAG_COUNT = 100
GENERATED_DAGS = f'''"""{DAG_COUNT} one-task DAGs (written by test_sweep_cost_by_dag_count.py)."""
from datetime import datetime, timezone

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for number in range({DAG_COUNT}):
    with DAG(dag_id=f"generated_{{number:03}}", schedule=None, catchup=False,
             start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:
        EmptyOperator(task_id="only")
    globals()[dag.dag_id] = dag
'''


@pytest.fixture(scope="module")
def many_dags(broker: Broker, work_dir: Path) -> Iterator[tuple[str, CountingProxy, AirflowApi]]:
    home = work_dir / f"many-dags-{uuid.uuid4().hex[:6]}"
    dags = home / "dags"
    dags.mkdir(parents=True)
    (dags / "generated.py").write_text(GENERATED_DAGS)
    topic = f"airstream-many-dags-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap_servers, topic)
    env = airflow_env(
        home, bootstrap_servers=broker.bootstrap_servers, topic=topic, instance_name="many", dags_folder=dags
    )
    with (
        start_airflow(env, log_dir=home / "logs", expected_dags=DAG_COUNT, timeout=240) as airflow,
        CountingProxy(airflow.url) as proxy,
    ):
        yield proxy.url, proxy, airflow.api()


def _run(api: AirflowApi, dag_ids: list[str]) -> None:
    run_ids = {dag_id: api.trigger(dag_id) for dag_id in dag_ids}
    for dag_id, run_id in run_ids.items():
        assert api.wait_for_run(dag_id, run_id) == "success"


def test_a_sweeps_requests_do_not_grow_from_10_to_100_dags(many_dags: tuple[str, CountingProxy, AirflowApi]) -> None:
    url, proxy, api = many_dags
    dag_ids = sorted(api.dag_ids())
    assert len(dag_ids) == DAG_COUNT
    client = AirflowRestClient(TokenAuthBackend(url, USERNAME, PASSWORD))
    t0 = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    start = {"mark": t0, "next": t0}
    source = RestEventSource(client, "many", max_runs_per_read=1000)
    source.read(start)  # the version and the asset list: once per process

    counts: dict[int, Counter[tuple[str, str]]] = {}
    dags_read: dict[int, int] = {}
    for upto, batch_of_dags in ((10, dag_ids[:10]), (100, dag_ids[10:])):
        _run(api, batch_of_dags)
        with proxy.counting() as window:
            batch = source.read(start)
        counts[upto] = Counter({key: n for key, n in window.counts.items() if "/api/" in key[1]})
        dags_read[upto] = len({event.dag_id for event in batch.events})

    print(f"\nsweep requests for runs of 10 DAGs: {dict(counts[10])}; of 100 DAGs: {dict(counts[100])}")
    assert dags_read == {10: 10, 100: 100}
    assert counts[10] == counts[100]
    assert sum(counts[100].values()) == 2, "one run list and one task-instance list"
    client.close()
