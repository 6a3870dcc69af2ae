"""``airflow dags test`` of the observation DAGs on Airflow 2.11.2 and on Airflow 3.3: the listener
publishes the same facts on both (run ids aside), every message valid under the contract."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airstream.schemas import Event, parse_event
from devstack.airflow import OBSERVATION_DAGS, airflow_env, migrate_db, run_airflow
from devstack.airflow2 import Airflow2Venv, airflow2_env, run_airflow2
from devstack.broker import Broker, create_topic

pytestmark = pytest.mark.integration

INSTANCE = "compat"
# Every DAG of devstack/observation_dags/, with the exit code of its `airflow dags test`.
DAGS = {"observe_branching": 0, "observe_failures": 1, "observe_asset_producer": 0, "observe_asset_consumer": 0}

Shape = tuple[str, str, str | None, int | None, int | None]  # event type, dag, task, map index, try


def _dags_test_all(run: Callable[..., Any], env: dict[str, str]) -> dict[str, str]:
    """Run ``airflow dags test`` for every DAG; returns each DAG's output. Fails on a listener error."""
    outputs = {}
    for dag_id, exit_code in DAGS.items():
        result = run(env, "dags", "test", dag_id)
        output = result.stdout + result.stderr
        assert result.returncode == exit_code, f"{dag_id}: exit {result.returncode}\n{output[-4000:]}"
        assert "Airflow is unaffected" not in output, f"a listener hook failed in {dag_id}:\n{output[-4000:]}"
        outputs[dag_id] = output
    spooled = list(Path(env["AIRFLOW__AIRSTREAM__SPOOL_DIR"]).glob("*.json"))
    assert not spooled, f"undelivered events left in the spool: {spooled}"
    return outputs


@pytest.fixture(scope="module")
def airflow2_topic(airflow2_venv: Airflow2Venv, broker: Broker, work_dir: Path) -> str:
    """The topic that the observation DAGs' ``dags test`` on Airflow 2.11.2 published to."""
    topic = f"airstream-af2-dags-test-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap_servers, topic)
    env = airflow2_env(
        airflow2_venv,
        work_dir / f"airflow2-dags-test-{uuid.uuid4().hex[:6]}",
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        instance_name=INSTANCE,
        dags_folder=OBSERVATION_DAGS,
    )
    migrate_db(env, executable=str(airflow2_venv.airflow), cwd=Path(env["AIRFLOW_HOME"]))
    _dags_test_all(lambda env, *args: run_airflow2(airflow2_venv, env, *args), env)
    return topic


@pytest.fixture(scope="module")
def airflow3_topic(broker: Broker, work_dir: Path) -> str:
    """The topic that the observation DAGs' ``dags test`` on Airflow 3.3 (this environment) published to."""
    topic = f"airstream-af3-dags-test-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap_servers, topic)
    env = airflow_env(
        work_dir / f"airflow3-dags-test-{uuid.uuid4().hex[:6]}",
        bootstrap_servers=broker.bootstrap_servers,
        topic=topic,
        instance_name=INSTANCE,
        dags_folder=OBSERVATION_DAGS,
    )
    migrate_db(env)
    _dags_test_all(run_airflow, env)
    return topic


def _events(records: list[Any]) -> list[Event]:
    return [parse_event(record.value) for record in records]  # raises on any message outside the contract


def _shape(event: Event) -> Shape:
    return (
        event.event_type.value,
        event.dag_id,
        getattr(event, "task_id", None),
        getattr(event, "map_index", None),
        getattr(event, "try_number", None),
    )


def test_airflow_2_and_3_publish_the_same_facts_under_dags_test(
    airflow2_topic: str, airflow3_topic: str, drain_topic: Callable[..., list[Any]]
) -> None:
    on_airflow2 = Counter(_shape(event) for event in _events(drain_topic(airflow2_topic)))
    on_airflow3 = Counter(_shape(event) for event in _events(drain_topic(airflow3_topic)))
    assert on_airflow2, "Airflow 2.11.2 published nothing"
    assert {dag_id for _, dag_id, *_ in on_airflow2} == set(DAGS)
    assert on_airflow2 == on_airflow3, (
        f"only on Airflow 2.11.2: {sorted((on_airflow2 - on_airflow3).elements(), key=str)}; "
        f"only on Airflow 3.3: {sorted((on_airflow3 - on_airflow2).elements(), key=str)}"
    )


@pytest.mark.parametrize(("topic_fixture", "major"), [("airflow2_topic", "2."), ("airflow3_topic", "3.")])
def test_every_event_is_valid_and_names_its_airflow_version(
    topic_fixture: str, major: str, request: pytest.FixtureRequest, drain_topic: Callable[..., list[Any]]
) -> None:
    events = _events(drain_topic(request.getfixturevalue(topic_fixture)))
    assert events
    assert all(event.instance == INSTANCE for event in events)
    versions = Counter(event.airflow_version for event in events)
    assert all(version and version.startswith(major) for version in versions), versions
    run_ids = {(event.dag_id, event.run_id) for event in events}
    assert len(run_ids) == len(DAGS), f"one run per DAG expected: {sorted(run_ids)}"
