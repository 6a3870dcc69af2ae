"""The session's two Airflows answer through their counting proxies, and the proxies count."""

from __future__ import annotations

import pytest
import requests

from devstack.rest_stack import RestAirflow

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fixture", ["airflow3_rest", "airflow2_rest"])
def test_proxy_forwards_and_counts(fixture: str, request: pytest.FixtureRequest) -> None:
    af: RestAirflow = request.getfixturevalue(fixture)
    assert sorted(af.admin_api().dag_ids()) == sorted(af.dag_ids)
    with af.proxy.counting() as window:
        response = requests.get(f"{af.url}/api/{af.api_version}/version", timeout=10)
        af.proxy.fail_next(1, status=503, pattern=f"/api/{af.api_version}/version")
        failed = requests.get(f"{af.url}/api/{af.api_version}/version", timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["version"].startswith(f"{af.major}.")
    assert failed.status_code == 503
    assert window.count("GET", f"/api/{af.api_version}/version") == 2
    assert window.total == 2
