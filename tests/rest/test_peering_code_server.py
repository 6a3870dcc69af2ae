"""Peering in a real code server (``dagster-webserver`` and its gRPC code server) against real Airflow
3.3, for the YAML component and for Python definitions: the first load fetches, "Reload definitions"
(``reloadRepositoryLocation``) makes no DAG-list request, ``airstream peering refresh`` fetches once
and the next reload uses what it stored, and the UI's component Refresh (``refreshComponentState``,
the Components tab's button) fetches again and reloads in one step. Counted at the counting proxy by
the DAG-list request, which only peering makes (the sensor is not ticked: no daemon runs)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from devstack import REPO_ROOT
from devstack.processes import ManagedProcess, free_port
from devstack.rest_stack import RestAirflow

pytestmark = pytest.mark.integration

Served = tuple[str, RestAirflow, ManagedProcess, dict[str, str], Path]

DEFINITIONS = """
from pathlib import Path

import dagster as dg


@dg.definitions
def defs():
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
"""

ASSET_KEYS = "query { assetNodes { assetKey { path } } }"
LOCATIONS = "query { workspaceOrError { ... on Workspace { locationEntries { name } } } }"
RELOAD = """mutation ($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename } }"""
REFRESH = """mutation ($name: String!, $key: String!) {
  refreshComponentState(locationName: $name, defsStateKey: $key) {
    __typename
    ... on RefreshComponentStateError { message }
    ... on PythonError { message }
  }
}"""


def write_project(root: Path, af: RestAirflow) -> Path:
    defs_dir = root / "src" / "peerproj" / "defs" / "airflow"
    defs_dir.mkdir(parents=True)
    (root / "src" / "peerproj" / "__init__.py").write_text("")
    (root / "src" / "peerproj" / "defs" / "__init__.py").write_text("")
    (root / "dg.toml").write_text('directory_type = "project"\n\n[project]\nroot_module = "peerproj"\n')
    component = {
        "type": "airstream.dagster_consumer.AirflowInstanceComponent",
        "attributes": {
            "name": af.name,
            "webserver_url": af.url,
            "auth": {"type": "token" if af.major >= 3 else "basic", "username": af.username, "password_env": "PEER_PW"},
            "kafka": {"bootstrap_servers": af.bootstrap_servers, "topic": af.topic},
            "filter": {"dag_id_pattern": "observe_*"},
        },
    }
    (defs_dir / "defs.yaml").write_text(yaml.safe_dump(component))
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS))
    return root / "definitions.py"


PYTHON_DEFINITIONS = """
import os

from airstream.dagster_consumer import (
    AirflowFilter, AirflowInstance, KafkaEventSource, TokenAuthBackend, build_defs_from_airflow_instance,
)

defs = build_defs_from_airflow_instance(
    airflow_instance=AirflowInstance(
        name=os.environ["PEER_NAME"],
        event_source=KafkaEventSource(os.environ["PEER_KAFKA"], os.environ["PEER_TOPIC"]),
        auth_backend=TokenAuthBackend(os.environ["PEER_URL"], os.environ["PEER_USER"], os.environ["PEER_PW"]),
    ),
    airflow_filter=AirflowFilter(dag_id_pattern="observe_*"),
)
"""


def graphql(url: str, query: str, **variables: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": variables}, timeout=120)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def dag_keys(url: str, name: str) -> set[str]:
    try:
        nodes = graphql(url, ASSET_KEYS)["assetNodes"]
    except (httpx.HTTPError, AssertionError):
        return set()
    return {node["assetKey"]["path"][2] for node in nodes if node["assetKey"]["path"][:2] == [name, "dag"]}


@pytest.fixture(params=["yaml_component", "python_definitions"])
def webserver(request: pytest.FixtureRequest, airflow3_rest: RestAirflow, tmp_path: Path) -> Iterator[Served]:
    af = airflow3_rest
    if request.param == "yaml_component":
        definitions = write_project(tmp_path / "project", af)
    else:
        definitions = tmp_path / "project" / "definitions.py"
        definitions.parent.mkdir(parents=True)
        definitions.write_text(textwrap.dedent(PYTHON_DEFINITIONS))
    home = tmp_path / "home"
    (home / "tmp").mkdir(parents=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = free_port()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "TMPDIR": str(home / "tmp"),
        "PEER_PW": af.password,
        "PEER_NAME": af.name,
        "PEER_URL": af.url,
        "PEER_USER": af.username,
        "PEER_KAFKA": af.bootstrap_servers,
        "PEER_TOPIC": af.topic,
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(definitions.parent / "src"), str(REPO_ROOT), os.environ.get("PYTHONPATH")])
        ),
    }
    executable = Path(sys.executable).parent / "dagster-webserver"
    with af.proxy.counting() as first_load:
        process = ManagedProcess.start(
            "dagster-webserver",
            [str(executable), "-f", str(definitions), "-h", "127.0.0.1", "-p", str(port)],
            env=env,
            cwd=home,
            log_path=tmp_path / "webserver.log",
        )
        url = f"http://127.0.0.1:{port}"
        try:
            process.wait_until(
                lambda: dag_keys(url, af.name) == set(af.dag_ids), timeout=120, what="the peered DAG assets"
            )
        except BaseException:
            process.stop()
            raise
    assert first_load.count("GET", "/api/v2/dags") == 1, dict(first_load.counts)
    try:
        yield url, af, process, env, definitions
    finally:
        process.stop()


def test_reload_uses_the_cache_and_a_refresh_fetches(webserver: Served) -> None:
    url, af, _, env, definitions = webserver
    (location,) = [entry["name"] for entry in graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]]

    def reload() -> None:
        assert graphql(url, RELOAD, name=location)["reloadRepositoryLocation"]["__typename"] == "WorkspaceLocationEntry"
        assert dag_keys(url, af.name) == set(af.dag_ids)

    with af.proxy.counting() as reloading:
        reload()
    assert reloading.count("GET", "/api/v2/dags") == 0, dict(reloading.counts)

    # The command, against the same Dagster instance (DAGSTER_HOME), then a reload that uses what it stored.
    with af.proxy.counting() as command:
        completed = subprocess.run(
            [str(Path(sys.executable).parent / "airstream"), "peering", "refresh", "-f", str(definitions)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr
    assert f"peered with Airflow instance {af.name!r}" in completed.stdout
    assert command.count("GET", "/api/v2/dags") == 1, dict(command.counts)
    with af.proxy.counting() as reloading:
        reload()
    assert reloading.count("GET", "/api/v2/dags") == 0, dict(reloading.counts)


@pytest.mark.parametrize("webserver", ["yaml_component"], indirect=True)  # the Components tab lists components
def test_the_ui_refresh_of_the_yaml_component(webserver: Served) -> None:
    url, af, _, _, _ = webserver
    (location,) = [entry["name"] for entry in graphql(url, LOCATIONS)["workspaceOrError"]["locationEntries"]]
    with af.proxy.counting() as refresh:
        result = graphql(url, REFRESH, name=location, key=f"airstream_peering__{af.name}")["refreshComponentState"]
        assert result["__typename"] == "RefreshComponentStateSuccess", result
        assert dag_keys(url, af.name) == set(af.dag_ids)
    assert refresh.count("GET", "/api/v2/dags") == 1, dict(refresh.counts)
