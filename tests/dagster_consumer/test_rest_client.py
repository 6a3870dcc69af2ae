"""AirflowRestClient against a fake Airflow over real HTTP (devstack.fake_airflow_http): dialects, paging,
batch bodies, retries, timeouts, errors. No Airflow needed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import requests

from airstream.dagster_consumer.rest import (
    AirflowApiError,
    AirflowApiVersionError,
    AirflowAuthBackend,
    AirflowRestClient,
    AirflowRunTimeout,
    AirflowUnreachable,
    BasicAuthBackend,
    TokenAuthBackend,
)
from airstream.dagster_consumer.rest.records import AirflowAssetRecord, DagRecord, TaskRecord
from devstack.fake_airflow_http import PASSWORD, USERNAME, FakeAirflowHttp
from devstack.processes import free_port

V2_RUNS = "/api/v2/dags/~/dagRuns/list"
V2_TIS = "/api/v2/dags/~/dagRuns/~/taskInstances/list"


@pytest.fixture(params=["v2", "v1"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeAirflowHttp]:
    with FakeAirflowHttp(api_version=request.param, dags=12) as server:
        yield server


def client_for(fake: FakeAirflowHttp, **options: object) -> AirflowRestClient:
    backend: AirflowAuthBackend
    if fake.api_version == "v2":
        backend = TokenAuthBackend(fake.url, USERNAME, PASSWORD)
    else:
        backend = BasicAuthBackend(fake.url, USERNAME, PASSWORD)
    return AirflowRestClient(backend, backoff_factor=0, **options)  # type: ignore[arg-type]


def api(fake: FakeAirflowHttp, path: str) -> str:
    return f"/api/{fake.api_version}{path}"


# ---------------------------------------------------------------------------- dialect


def test_the_dialect_is_asked_of_the_server_once(fake: FakeAirflowHttp) -> None:
    client = client_for(fake)
    info = client.server_info()
    assert info.api_version == fake.api_version
    assert info.airflow_version == fake.airflow_version
    client.list_dags()
    client.list_dags()
    assert fake.count("GET", f"/api/{fake.api_version}/version") == 1
    assert fake.count("GET", "/api/v1/version") + fake.count("GET", "/api/v2/version") == (
        1 if fake.api_version == "v2" else 2
    )


def test_v1_asked_of_airflow_3_says_it_is_airflow_3() -> None:
    with FakeAirflowHttp("v2") as fake:
        client = AirflowRestClient(TokenAuthBackend(fake.url, USERNAME, PASSWORD), api_version="v1")
        with pytest.raises(AirflowApiVersionError, match=r"404 on /api/v1: it is Airflow 3 .*TokenAuthBackend"):
            client.list_dags()


def test_v2_asked_of_airflow_2_says_it_is_airflow_2() -> None:
    with FakeAirflowHttp("v1") as fake:
        client = AirflowRestClient(BasicAuthBackend(fake.url, USERNAME, PASSWORD), api_version="v2")
        with pytest.raises(AirflowApiVersionError, match=r"404 on /api/v2: it is Airflow 2 .*BasicAuthBackend"):
            client.list_dags()


def test_no_rest_api_at_all_says_to_check_the_url() -> None:
    with FakeAirflowHttp("v3-does-not-exist") as fake:
        client = AirflowRestClient(BasicAuthBackend(fake.url, USERNAME, PASSWORD))
        with pytest.raises(AirflowApiVersionError, match=r"both answered 404.*base URL of the Airflow UI"):
            client.server_info()


def test_a_url_with_the_api_path_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="without /api/v2: use 'http://af:8080'"):
        TokenAuthBackend("http://af:8080/api/v2", USERNAME, PASSWORD)


# ---------------------------------------------------------------------------- lists and records


def test_list_dags_pages_through_everything(fake: FakeAirflowHttp) -> None:
    dags = client_for(fake, page_limit=5).list_dags()
    assert [dag.dag_id for dag in dags] == fake.dag_ids
    assert fake.count("GET", api(fake, "/dags")) == 3  # 5 + 5 + 2
    offsets = [request.query["offset"] for request in fake.requests if request.path == api(fake, "/dags")]
    assert offsets == [["0"], ["5"], ["10"]]
    assert dags[0] == DagRecord(
        dag_id="dag_000",
        description="about dag_000",
        owners=("data",),
        tags=("nightly",),
        schedule="0 3 * * *",
        fileloc="/dags/dag_000.py",
        is_paused=False,
        is_active=True,
    )


def test_list_tasks_reads_both_operator_fields(fake: FakeAirflowHttp) -> None:
    assert client_for(fake).list_tasks("dag_000") == [
        TaskRecord("dag_000", "extract", "PythonOperator", ("load",)),
        TaskRecord("dag_000", "load", "SQLOperator", ()),
    ]


def test_list_assets_reads_assets_or_datasets(fake: FakeAirflowHttp) -> None:
    assets = client_for(fake).list_assets()
    assert assets == [
        AirflowAssetRecord(
            uri="s3://warehouse/orders",
            name="orders" if fake.api_version == "v2" else None,
            producing_tasks=(("dag_000", "load"),),
            consuming_dag_ids=("dag_001",),
        )
    ]
    assert fake.count("GET", api(fake, "/assets" if fake.api_version == "v2" else "/datasets")) == 1


def test_dag_runs_come_from_the_batch_search_with_its_filters(fake: FakeAirflowHttp) -> None:
    for index in range(23):
        fake.add_run(f"dag_{index % 4:03d}", f"run_{index}", "success" if index % 3 else "failed")
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    runs = client_for(fake, page_limit=10).list_dag_runs(
        dag_ids=["dag_000", "dag_001", "dag_002", "dag_003"], states=["success"], end_date_gte=since
    )
    assert len(runs) == 15
    bodies = fake.bodies("POST", api(fake, "/dags/~/dagRuns/list"))
    assert [body["page_offset"] for body in bodies] == [0, 10]
    assert bodies[0] == {
        "order_by": "id",
        "dag_ids": ["dag_000", "dag_001", "dag_002", "dag_003"],
        "states": ["success"],
        "end_date_gte": "2026-01-01T00:00:00+00:00",
        "page_offset": 0,
        "page_limit": 10,
    }


def test_list_dag_runs_stops_at_its_limit(fake: FakeAirflowHttp) -> None:
    for index in range(30):
        fake.add_run("dag_000", f"run_{index}")
    runs = client_for(fake, page_limit=10).list_dag_runs(limit=15)
    assert [run.run_id for run in runs] == [f"run_{index}" for index in range(15)]
    assert [body["page_limit"] for body in fake.bodies("POST", api(fake, "/dags/~/dagRuns/list"))] == [10, 5]


def test_task_instances_come_from_the_batch_search_with_the_field_names_of_each_version(
    fake: FakeAirflowHttp,
) -> None:
    for index in range(7):
        fake.add_task_instance("dag_000", "run_1", f"task_{index}", map_index=index - 1, try_number=2)
    fake.add_task_instance("dag_000", "run_2", "other", state="failed")
    tis = client_for(fake, page_limit=3).list_task_instances(
        dag_ids=["dag_000"], run_ids=["run_1"], states=["success"], end_date_gte=datetime(2026, 1, 1)
    )
    assert [(ti.task_id, ti.map_index, ti.try_number) for ti in tis] == [
        (f"task_{index}", index - 1, 2) for index in range(7)
    ]
    bodies = fake.bodies("POST", api(fake, "/dags/~/dagRuns/~/taskInstances/list"))
    assert len(bodies) == 3
    expected = {
        "dag_ids": ["dag_000"],
        "dag_run_ids": ["run_1"],
        "state": ["success"],
        "end_date_gte": "2026-01-01T00:00:00+00:00",  # a naive datetime is UTC
        "page_offset": 0,
        "page_limit": 3,
    }
    if fake.api_version == "v2":
        expected["order_by"] = "id"  # REST API v1 refuses order_by in this body
    assert bodies[0] == expected


# ---------------------------------------------------------------------------- trigger and wait


def test_trigger_sends_conf_and_logical_date(fake: FakeAirflowHttp) -> None:
    client = client_for(fake)
    run_id = client.trigger_dag("dag_000", conf={"full": True}, logical_date=datetime(2026, 5, 1, 12))
    assert client.get_run_state("dag_000", run_id) == "queued"
    client.trigger_dag("dag_001")
    bodies = fake.bodies("POST", api(fake, "/dags/dag_000/dagRuns")) + fake.bodies(
        "POST", api(fake, "/dags/dag_001/dagRuns")
    )
    assert bodies[0] == {"conf": {"full": True}, "logical_date": "2026-05-01T12:00:00+00:00"}
    # Airflow 3 requires the field (null: no logical date); Airflow 2 defaults it to now when absent.
    assert bodies[1] == ({"conf": {}, "logical_date": None} if fake.api_version == "v2" else {"conf": {}})


def test_wait_for_run_completion_polls_until_finished(fake: FakeAirflowHttp) -> None:
    client = client_for(fake)
    run_id = client.trigger_dag("dag_000")
    fake.run_states[run_id] = ["queued", "running", "running", "failed"]
    assert client.wait_for_run_completion("dag_000", run_id, timeout=10, poll_interval=0.01) == "failed"
    assert fake.count("GET", api(fake, f"/dags/dag_000/dagRuns/{run_id}")) == 4


def test_wait_for_run_completion_times_out_naming_the_run() -> None:
    with FakeAirflowHttp("v2") as fake:
        client = client_for(fake)
        run_id = client.trigger_dag("dag_000")
        started = time.monotonic()
        with pytest.raises(AirflowRunTimeout, match=rf"dag_000/{run_id} did not finish within 0.3 s") as caught:
            client.wait_for_run_completion("dag_000", run_id, timeout=0.3, poll_interval=0.1)
        assert time.monotonic() - started < 2
        assert caught.value.last_state == "queued"
        assert isinstance(caught.value, TimeoutError)


def test_an_unknown_run_is_a_404_error(fake: FakeAirflowHttp) -> None:
    with pytest.raises(AirflowApiError, match=r"answered 404.*was not found") as caught:
        client_for(fake).get_dag_run("dag_000", "nope")
    assert caught.value.status_code == 404


def test_run_ids_are_escaped_in_paths(fake: FakeAirflowHttp) -> None:
    fake.add_run("dag_000", "manual__2026-01-01T00:00:00+00:00")
    assert client_for(fake).get_dag_run("dag_000", "manual__2026-01-01T00:00:00+00:00").state == "success"


# ---------------------------------------------------------------------------- session, retries, timeouts


class CountingBackend(BasicAuthBackend):
    sessions = 0

    def get_session(self) -> requests.Session:
        type(self).sessions += 1
        return super().get_session()


def test_one_session_per_client_reused() -> None:
    with FakeAirflowHttp("v1") as fake:
        CountingBackend.sessions = 0
        client = AirflowRestClient(CountingBackend(fake.url, USERNAME, PASSWORD))
        client.list_dags()
        client.list_assets()
        client.list_dag_runs()
        assert CountingBackend.sessions == 1
        assert client.session is client.session


def test_reads_and_batch_searches_are_retried_on_5xx(fake: FakeAirflowHttp) -> None:
    client = client_for(fake, retries=3)
    client.server_info()
    fake.fail_next(2, status=503, path=api(fake, "/dags"))
    fake.fail_next(2, status=502, path=api(fake, "/dags/~/dagRuns/list"))
    assert len(client.list_dags()) == 12
    assert client.list_dag_runs() == []
    assert fake.count("GET", api(fake, "/dags")) == 3
    assert fake.count("POST", api(fake, "/dags/~/dagRuns/list")) == 3


def test_trigger_is_not_retried_after_reaching_airflow(fake: FakeAirflowHttp) -> None:
    client = client_for(fake, retries=3)
    client.server_info()
    fake.fail_next(1, status=503, path=api(fake, "/dags/dag_000/dagRuns"))
    with pytest.raises(AirflowApiError, match="answered 503") as caught:
        client.trigger_dag("dag_000")
    assert caught.value.status_code == 503
    assert fake.count("POST", api(fake, "/dags/dag_000/dagRuns")) == 1
    assert not fake.runs


def test_retries_give_up_with_the_status(fake: FakeAirflowHttp) -> None:
    client = client_for(fake, retries=2)
    client.server_info()
    fake.fail_next(10, status=500, path=api(fake, "/dags"))
    with pytest.raises(AirflowApiError, match=r"answered 500 to GET .*after 2 retries"):
        client.list_dags()
    assert fake.count("GET", api(fake, "/dags")) == 3


def test_a_closed_port_is_unreachable_after_retries() -> None:
    client = AirflowRestClient(
        BasicAuthBackend(f"http://127.0.0.1:{free_port()}", USERNAME, PASSWORD), retries=2, backoff_factor=0
    )
    with pytest.raises(
        AirflowUnreachable,
        match=r"no answer from Airflow at http://127\.0\.0\.1:\d+ .*after 2 retries",
    ):
        client.list_dags()


def test_a_slow_answer_times_out_and_is_retried() -> None:
    with FakeAirflowHttp("v1") as fake:
        client = AirflowRestClient(BasicAuthBackend(fake.url, USERNAME, PASSWORD), timeout=0.3, backoff_factor=0)
        client.server_info()
        fake.fail_next(1, status=200, path="/api/v1/dags", delay=1.0)  # answered too late
        assert len(client.list_dags()) == 3
        assert fake.count("GET", "/api/v1/dags") == 2
        fake.fail_next(10, status=200, path="/api/v1/dags", delay=1.0)
        with pytest.raises(AirflowUnreachable, match="Timeout"):
            client.list_dags()


@pytest.mark.parametrize("bad", [{"page_limit": 0}, {"page_limit": 101}, {"api_version": "v3"}])
def test_invalid_options_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AirflowRestClient(BasicAuthBackend("http://af:8080", USERNAME, PASSWORD), **bad)  # type: ignore[arg-type]


def test_an_empty_selection_selects_nothing_without_asking(fake: FakeAirflowHttp) -> None:
    fake.add_run("dag_000", "run_1")
    fake.add_task_instance("dag_000", "run_1", "extract")
    client = client_for(fake)
    client.server_info()
    assert client.list_dag_runs(dag_ids=[]) == []
    assert client.list_dag_runs(states=[]) == []
    assert client.list_task_instances(run_ids=[]) == []
    assert len(fake.requests) <= 2  # the version (and on v2 the token), nothing else
    assert len(client.list_dag_runs(dag_ids=None)) == 1


def test_429_is_retried(fake: FakeAirflowHttp) -> None:
    client = client_for(fake)
    client.server_info()
    fake.fail_next(1, status=429, path=api(fake, "/dags"))
    assert len(client.list_dags()) == 12
    assert fake.count("GET", api(fake, "/dags")) == 2


def test_a_trigger_that_times_out_is_not_repeated_and_says_the_run_may_exist() -> None:
    with FakeAirflowHttp("v2") as fake:
        client = AirflowRestClient(TokenAuthBackend(fake.url, USERNAME, PASSWORD), timeout=0.3, backoff_factor=0)
        client.server_info()
        fake.fail_next(1, status=200, path="/api/v2/dags/dag_000/dagRuns", delay=1.0)
        with pytest.raises(AirflowUnreachable, match=r"may have taken effect .*look for it"):
            client.trigger_dag("dag_000")
        assert fake.count("POST", "/api/v2/dags/dag_000/dagRuns") == 1
