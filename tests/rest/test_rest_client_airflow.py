"""AirflowRestClient, its auth backends and the trigger asset against real Airflow 3.3 (REST API v2, JWT)
and Airflow 2.11 (REST API v1, basic auth), each once per session behind a counting proxy.

Every test runs on both versions. The module triggers two runs per Airflow (observe_branching through
the trigger asset, observe_failures for the timeout) and waits for both, so no run of this module is
still going when another module starts.
"""

from __future__ import annotations

import math
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey, AssetSpec, DagsterInstance, DailyPartitionsDefinition, materialize

from airstream.dagster_consumer import AirflowInstance, build_trigger_dag_asset
from airstream.dagster_consumer.rest import (
    AirflowApiVersionError,
    AirflowAuthenticationError,
    AirflowRestClient,
    AirflowRunTimeout,
    BasicAuthBackend,
    TokenAuthBackend,
)
from devstack.rest_stack import RestAirflow

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-the-Pa55word-of-admin"
PARTITION = "2026-03-04"
CONF = {"requested_by": "dagster", "rows": 3}
BRANCHING_TASKS = {"start", "branch", "left", "right", "join", "stop_here", "after_stop", "regions.process"}
BRANCHING_STATES = {
    ("start", -1): "success",
    ("branch", -1): "success",
    ("left", -1): "success",
    ("right", -1): "skipped",
    ("join", -1): "success",
    ("stop_here", -1): "success",
    ("after_stop", -1): "skipped",
    ("regions.process", 0): "success",
    ("regions.process", 1): "success",
    ("regions.process", 2): "success",
}


@dataclass
class Triggered:
    """One Airflow, a client through its proxy, and the observe_branching run the trigger asset started."""

    af: RestAirflow
    client: AirflowRestClient
    run_id: str
    t0: datetime
    seconds: float


@pytest.fixture(scope="module", params=["airflow3_rest", "airflow2_rest"])
def triggered(request: pytest.FixtureRequest) -> Iterator[Triggered]:
    """Runs observe_branching once through ``build_trigger_dag_asset`` (daily partition, conf) and waits."""
    af: RestAirflow = request.getfixturevalue(request.param)
    t0 = datetime.now(timezone.utc) - timedelta(seconds=1)
    instance = AirflowInstance(name=af.name, auth_backend=af.auth_backend())
    asset = build_trigger_dag_asset(
        instance,
        "observe_branching",
        spec=AssetSpec("branching_report", partitions_def=DailyPartitionsDefinition("2026-01-01")),
        conf=CONF,
        timeout=300,
        poll_interval=1,
    )
    started = time.monotonic()
    with DagsterInstance.ephemeral() as dagster:
        result = materialize([asset], instance=dagster, partition_key=PARTITION)
        assert result.success
        event = dagster.get_latest_materialization_event(AssetKey("branching_report"))
        assert event is not None and event.asset_materialization is not None
        metadata = event.asset_materialization.metadata
    seconds = time.monotonic() - started
    print(f"\n{af.name}: observe_branching triggered and finished through the trigger asset in {seconds:.1f} s")
    assert metadata["airflow/state"].value == "success"
    assert metadata["airflow/url"].value.startswith(af.url + "/dags/observe_branching/")
    client = AirflowRestClient(af.auth_backend())
    yield Triggered(af, client, str(metadata["airflow/run_id"].value), t0, seconds)
    client.close()


def test_the_dialect_is_found_by_asking_once(triggered: Triggered) -> None:
    af = triggered.af
    client = AirflowRestClient(af.auth_backend())
    with af.proxy.counting() as window:
        info = client.server_info()
        client.list_dags()
        assert client.server_info() is info
    assert info.api_version == af.api_version
    assert info.airflow_version.startswith(f"{af.major}.")
    assert window.count("GET", f"/api/{af.api_version}/version") == 1
    if af.major == 2:
        assert window.count("GET", "/api/v2/version") == 1  # asked first, answered 404


def test_lists_dags_tasks_and_assets(triggered: Triggered) -> None:
    client, af = triggered.client, triggered.af
    dags = {dag.dag_id: dag for dag in client.list_dags()}
    assert set(af.dag_ids) <= set(dags)
    assert dags["observe_asset_consumer"].schedule == ("asset" if af.major == 3 else "dataset")
    assert dags["observe_branching"].tags == ("airstream-observation",)
    assert dags["observe_branching"].fileloc is not None and dags["observe_branching"].fileloc.endswith(
        "observe_branching.py"
    )
    tasks = {task.task_id: task for task in client.list_tasks("observe_branching")}
    assert set(tasks) == BRANCHING_TASKS
    assert tasks["branch"].downstream_task_ids == ("left", "right")
    [asset] = [asset for asset in client.list_assets() if asset.uri == "s3://warehouse/orders.parquet"]
    assert asset.producing_tasks == (("observe_asset_producer", "write_orders"),)
    assert asset.consuming_dag_ids == ("observe_asset_consumer",)


def test_pagination_with_small_pages(triggered: Triggered) -> None:
    af = triggered.af
    client = AirflowRestClient(af.auth_backend(), page_limit=3)
    client.server_info()
    with af.proxy.counting() as window:
        dags = client.list_dags()
        tis = client.list_task_instances(run_ids=[triggered.run_id])
    assert len(dags) >= 4
    assert window.count("GET", f"/api/{af.api_version}/dags") == math.ceil(len(dags) / 3)
    assert len(tis) == len(BRANCHING_STATES)
    assert window.count("POST", f"/api/{af.api_version}/dags/~/dagRuns/~/taskInstances/list") == math.ceil(len(tis) / 3)
    assert len({(ti.task_id, ti.map_index) for ti in tis}) == len(tis)  # no duplicates across pages


def test_trigger_sent_conf_and_logical_date(triggered: Triggered) -> None:
    run = triggered.client.get_dag_run("observe_branching", triggered.run_id)
    assert run.logical_date == datetime(2026, 3, 4, tzinfo=timezone.utc)
    assert run.state == "success"
    assert run.end_date is not None and run.end_date >= triggered.t0
    assert triggered.af.admin_api().dag_run("observe_branching", triggered.run_id)["conf"] == CONF
    assert triggered.client.get_run_state("observe_branching", triggered.run_id) == "success"


def test_batch_searches_with_filters_cost_one_call_each(triggered: Triggered) -> None:
    af, client = triggered.af, triggered.client
    client.server_info()
    client.list_dags()  # buys the token outside the window
    with af.proxy.counting() as window:
        runs = client.list_dag_runs(dag_ids=list(af.dag_ids), states=["success"], end_date_gte=triggered.t0)
        tis = client.list_task_instances(
            dag_ids=list(af.dag_ids), run_ids=[run.run_id for run in runs], end_date_gte=triggered.t0
        )
        skipped = client.list_task_instances(run_ids=[triggered.run_id], states=["skipped"])
    assert triggered.run_id in {run.run_id for run in runs}
    assert all(run.state == "success" and run.end_date and run.end_date >= triggered.t0 for run in runs)
    states = {(ti.task_id, ti.map_index): ti.state for ti in tis if ti.run_id == triggered.run_id}
    # Skipped tasks have an end date too on both versions; the filter keeps what ended after t0.
    assert states == BRANCHING_STATES
    assert {ti.task_id for ti in skipped} == {"right", "after_stop"}
    api = af.api_version
    print(f"\n{af.name}: batch searches over {len(af.dag_ids)} DAGs: {dict(window.counts)}")
    assert window.counts == {
        ("POST", f"/api/{api}/dags/~/dagRuns/list"): 1,
        ("POST", f"/api/{api}/dags/~/dagRuns/~/taskInstances/list"): 2,
    }


def test_wait_for_run_completion_times_out_then_completes(triggered: Triggered) -> None:
    client = triggered.client
    run_id = client.trigger_dag("observe_failures")
    started = time.monotonic()
    with pytest.raises(AirflowRunTimeout, match=re.escape(f"observe_failures/{run_id} did not finish within 0.5 s")):
        client.wait_for_run_completion("observe_failures", run_id, timeout=0.5, poll_interval=0.2)
    assert time.monotonic() - started < 5
    with triggered.af.proxy.counting() as window:
        assert client.wait_for_run_completion("observe_failures", run_id, timeout=300, poll_interval=2) == "failed"
    polls = window.count("GET", f"/api/{triggered.af.api_version}/dags/{{dag_id}}/dagRuns/{{run_id}}")
    print(f"\n{triggered.af.name}: observe_failures finished after {polls} polls at a 2 s interval")


def test_retries_on_5xx_through_the_proxy(triggered: Triggered) -> None:
    af = triggered.af
    client = AirflowRestClient(af.auth_backend(), backoff_factor=0.1)
    client.server_info()
    client.list_dags()
    pattern = f"/api/{af.api_version}/dags/~/dagRuns/list"
    af.proxy.fail_next(2, status=503, pattern=pattern)
    with af.proxy.counting() as window:
        assert client.list_dag_runs(dag_ids=["observe_branching"], limit=1)
    assert window.count("POST", pattern) == 3


def test_wrong_credentials_name_the_user_and_url_never_the_password(triggered: Triggered) -> None:
    af = triggered.af
    backend = (
        TokenAuthBackend(af.url, "admin", WRONG_PASSWORD)
        if af.major == 3
        else BasicAuthBackend(af.url, "admin", WRONG_PASSWORD)
    )
    client = AirflowRestClient(backend)
    with pytest.raises(AirflowAuthenticationError) as caught:
        client.list_dags()
    message = str(caught.value)
    assert "'admin'" in message and af.url in message
    for text in (message, repr(caught.value), repr(client), repr(backend)):
        assert WRONG_PASSWORD not in text


def test_the_other_versions_auth_says_which_backend_to_use(triggered: Triggered) -> None:
    af = triggered.af
    if af.major == 3:
        client = AirflowRestClient(BasicAuthBackend(af.url, af.username, af.password))
        with pytest.raises(AirflowAuthenticationError, match=r"this is Airflow 3.*Use TokenAuthBackend"):
            client.list_dags()
    else:
        client = AirflowRestClient(TokenAuthBackend(af.url, af.username, af.password))
        with pytest.raises(AirflowAuthenticationError, match=r"not Airflow 3\. For Airflow 2 use BasicAuthBackend"):
            client.list_dags()


def test_the_wrong_api_version_says_which_airflow_it_is(triggered: Triggered) -> None:
    af = triggered.af
    wrong = "v1" if af.major == 3 else "v2"
    client = AirflowRestClient(af.auth_backend(), api_version=wrong)
    expected = "it is Airflow 3 .*TokenAuthBackend" if af.major == 3 else "it is Airflow 2 .*BasicAuthBackend"
    with pytest.raises(AirflowApiVersionError, match=rf"answers 404 on /api/{wrong}: {expected}"):
        client.list_dags()


def test_an_invalid_or_expired_token_is_renewed(airflow3_rest: RestAirflow) -> None:
    """Airflow 3 only: Airflow 2 uses basic auth."""
    af = airflow3_rest
    import jwt  # PyJWT, installed with Airflow 3 in the dev environment

    backend = af.auth_backend()
    assert isinstance(backend, TokenAuthBackend)
    client = AirflowRestClient(backend)
    client.list_dags()
    now = int(time.time())
    claims = {"sub": "admin", "role": "admin", "teams": [], "aud": "apache-airflow", "jti": "test"}
    with warnings.catch_warnings():  # the devstack secret is shorter than PyJWT recommends for HS512
        warnings.simplefilter("ignore")
        signed_by_another = jwt.encode(
            {**claims, "iat": now, "nbf": now, "exp": now + 3600}, "another-secret-0123456789abcdef", algorithm="HS512"
        )
        expired = jwt.encode(
            {**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600},
            af.airflow.env["AIRFLOW__API_AUTH__JWT_SECRET"],
            algorithm="HS512",
            headers={"kid": "not-used"},
        )
    token_path = ("POST", "/auth/token")
    dags_path = ("GET", "/api/v2/dags")
    for token, kind, refusal in ((signed_by_another, "invalid", 403), (expired, "expired", 401)):
        # The backend believes the token good (as after an API server restart with a new secret,
        # or a clock jump): Airflow refuses it (403 Invalid JWT token, 401 Token Expired), the
        # backend buys a new one and repeats the request once.
        backend._token, backend._renew_at = token, float("inf")
        answered = len(af.proxy.statuses)
        with af.proxy.counting() as window:
            assert len(client.list_dags()) >= 4, kind
        assert [status for method, _, status in af.proxy.statuses[answered:] if method == "GET"] == [refusal, 200]
        assert window.counts[token_path] == 1, kind
        assert window.counts[dags_path] == 2, kind
    # Renewal before expiry: a token due for renewal is replaced before any request is refused.
    backend._renew_at = 0.0
    with af.proxy.counting() as window:
        client.list_dags()
    assert window.counts[token_path] == 1 and window.counts[dags_path] == 1


def test_a_search_costs_the_same_for_one_dag_or_all(triggered: Triggered) -> None:
    af, client = triggered.af, triggered.client
    client.list_dags()
    counts = []
    for dag_ids in (["observe_branching"], list(af.dag_ids), None):
        with af.proxy.counting() as window:
            runs = client.list_dag_runs(dag_ids=dag_ids, end_date_gte=triggered.t0)
            client.list_task_instances(dag_ids=dag_ids, run_ids=[run.run_id for run in runs])
        counts.append(window.counts)
    assert counts[0] == counts[1] == counts[2]
    assert counts[0].total() == 2
