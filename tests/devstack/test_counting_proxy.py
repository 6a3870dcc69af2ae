"""The counting proxy in front of a fake Airflow: it forwards, counts per (method, path pattern) across
threads, counts a stretch of a test, injects failures, and records statuses."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from devstack.counting_proxy import CountingProxy, path_pattern
from devstack.fake_airflow_http import PASSWORD, USERNAME, FakeAirflowHttp


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("/api/v2/dags?limit=100&offset=0", "/api/v2/dags"),
        (
            "/api/v2/dags/etl/dagRuns/manual__2026-01-01T00%3A00%3A00%2B00%3A00",
            "/api/v2/dags/{dag_id}/dagRuns/{run_id}",
        ),
        ("/api/v2/dags/~/dagRuns/list", "/api/v2/dags/~/dagRuns/list"),
        ("/api/v2/dags/~/dagRuns/~/taskInstances/list", "/api/v2/dags/~/dagRuns/~/taskInstances/list"),
        (
            "/api/v1/dags/etl/dagRuns/r/taskInstances/load/2",
            "/api/v1/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/{map_index}",
        ),
        ("/api/v1/dags/etl/tasks", "/api/v1/dags/{dag_id}/tasks"),
        ("/auth/token", "/auth/token"),
    ],
)
def test_path_patterns(path: str, pattern: str) -> None:
    assert path_pattern(path) == pattern


def test_forwards_counts_and_injects_failures() -> None:
    with FakeAirflowHttp("v1", dags=3) as fake, CountingProxy(fake.url) as proxy:
        auth = (USERNAME, PASSWORD)
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda _: requests.get(f"{proxy.url}/api/v1/dags", auth=auth, timeout=10), range(40))
            )
        assert {answer.status_code for answer in answers} == {200}
        assert len(answers[0].json()["dags"]) == 3
        assert proxy.count("GET", "/api/v1/dags") == 40
        with proxy.counting() as window:
            proxy.fail_next(1, status=503, method="POST", pattern="/api/v1/dags/~/dagRuns/list")
            failed = requests.post(f"{proxy.url}/api/v1/dags/~/dagRuns/list", json={}, auth=auth, timeout=10)
            ok = requests.post(f"{proxy.url}/api/v1/dags/~/dagRuns/list", json={}, auth=auth, timeout=10)
            requests.get(f"{proxy.url}/api/v1/dags/dag_000/dagRuns/run_1", auth=auth, timeout=10)
        assert (failed.status_code, ok.status_code) == (503, 200)
        assert window.counts == {
            ("POST", "/api/v1/dags/~/dagRuns/list"): 2,
            ("GET", "/api/v1/dags/{dag_id}/dagRuns/{run_id}"): 1,
        }
        assert fake.count("POST", "/api/v1/dags/~/dagRuns/list") == 1  # the injected failure never reached Airflow
        assert proxy.statuses[-3:] == [
            ("POST", "/api/v1/dags/~/dagRuns/list", 503),
            ("POST", "/api/v1/dags/~/dagRuns/list", 200),
            ("GET", "/api/v1/dags/{dag_id}/dagRuns/{run_id}", 404),
        ]
        proxy.reset()
        assert proxy.total == 0 and proxy.requests == []


def test_an_upstream_that_is_gone_answers_502() -> None:
    with FakeAirflowHttp("v1") as fake:
        upstream = fake.url
    with CountingProxy(upstream) as proxy:
        assert requests.get(f"{proxy.url}/api/v1/version", timeout=10).status_code == 502
