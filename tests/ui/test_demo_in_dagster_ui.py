"""What a user sees in Dagster after the demo, asked of a real webserver (GraphQL) and a real browser.

``scripts/demo --exit-when-recorded`` runs twice in a row in one work directory, as a user would
run it twice; then Dagster's webserver (no daemon, so nothing changes under the test) serves the
instance the second demo left, and the tests ask its GraphQL API and headless Chromium what shows:
the second run's events, failures as failed checks, the lineage, one record per run on the DAG
assets, red in the catalog.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from devstack import REPO_ROOT
from devstack.browser import chromium_session
from devstack.dagster import graphql, start_dagster_webserver
from devstack.screenshots import WEBSERVER_ENV, open_page, status_colour, take_pictures
from devstack.stack import EXAMPLE_DAG_IDS

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

TRIGGERED = re.compile(r"triggered (\w+): run (\S+)")
ASSET_NODES = """
{ assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name executionForLatestMaterialization { status } } } }
} }
"""
RECORDS = """
query Records($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset {
    assetMaterializations(limit: 100) { metadataEntries { label ... on TextMetadataEntry { text } } }
    assetObservations(limit: 100) { metadataEntries { label ... on TextMetadataEntry { text } } }
} } }
"""


@dataclass(frozen=True)
class DemoRun:
    output: str
    run_ids: dict[str, str]  # dag id → run id the demo triggered


@dataclass(frozen=True)
class Demo:
    first: DemoRun
    second: DemoRun
    work_dir: Path
    dagster_url: str


def _run_demo(work_dir: Path) -> DemoRun:
    command = [str(REPO_ROOT / "scripts" / "demo"), "--work-dir", str(work_dir), "--dagster-port", "0"]
    result = subprocess.run(
        [*command, "--exit-when-recorded"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"scripts/demo exited with {result.returncode}:\n{output[-4000:]}"
    return DemoRun(output=result.stdout, run_ids=dict(TRIGGERED.findall(result.stdout)))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    work_dir = tmp_path_factory.mktemp("demo")
    first = _run_demo(work_dir)
    second = _run_demo(work_dir)
    process, url = start_dagster_webserver(work_dir / "dagster", env=WEBSERVER_ENV, log_dir=work_dir / "logs")
    with process:
        yield Demo(first=first, second=second, work_dir=work_dir, dagster_url=url)


def _asset_nodes(demo: Demo) -> dict[tuple[str, ...], dict[str, Any]]:
    nodes = graphql(demo.dagster_url, ASSET_NODES)["assetNodes"]
    return {tuple(node["assetKey"]["path"]): node for node in nodes}


def _records(demo: Demo, *path: str) -> list[dict[str, str]]:
    """The text metadata of every record on the asset ``path`` (materializations, then observations)."""
    asset = graphql(demo.dagster_url, RECORDS, {"key": {"path": list(path)}})["assetOrError"]
    events = asset.get("assetMaterializations", []) + asset.get("assetObservations", [])
    return [{entry["label"]: entry.get("text") for entry in event["metadataEntries"]} for event in events]


def _check_status(node: dict[str, Any], name: str) -> str | None:
    checks = {check["name"]: check for check in node["assetChecksOrError"]["checks"]}
    execution = checks[name]["executionForLatestMaterialization"]
    return execution["status"] if execution else None


def test_the_second_demo_starts_clean_and_records_its_own_runs(demo: Demo) -> None:
    assert set(demo.first.run_ids) == set(demo.second.run_ids) == set(EXAMPLE_DAG_IDS)
    assert not set(demo.first.run_ids.values()) & set(demo.second.run_ids.values())
    assert "starting clean" in demo.second.output
    for dag_id, run_id in demo.second.run_ids.items():
        recorded_runs = [record["airflow/run_id"] for record in _records(demo, "local", "dag", dag_id)]
        assert recorded_runs == [run_id], f"{dag_id}: the second demo's run, and only it, is recorded"
    # The console printed the second demo's events, none of the first's.
    for run_id in demo.first.run_ids.values():
        assert run_id not in demo.second.output
    assert f"run {demo.second.run_ids['example_etl']} success: 3 success" in demo.second.output


def test_a_failed_task_and_its_failed_run_show_as_failed_checks(demo: Demo) -> None:
    nodes = _asset_nodes(demo)
    assert _check_status(nodes[("partner_feed",)], "airflow_task_succeeded") == "FAILED"
    assert _check_status(nodes[("local", "dag", "example_failing")], "airflow_run_succeeded") == "FAILED"
    assert _check_status(nodes[("warehouse_orders",)], "airflow_task_succeeded") == "SUCCEEDED"
    assert _check_status(nodes[("local", "dag", "example_etl")], "airflow_run_succeeded") == "SUCCEEDED"
    assert _check_status(nodes[("monthly_report",)], "airflow_run_succeeded") == "SUCCEEDED"


def test_dag_assets_are_downstream_of_their_mapped_assets_in_the_instance_group(demo: Demo) -> None:
    nodes = _asset_nodes(demo)

    def upstream(*path: str) -> set[tuple[str, ...]]:
        return {tuple(dep["path"]) for dep in nodes[path]["dependencyKeys"]}

    assert upstream("local", "dag", "example_etl") == {("warehouse_orders",)}
    assert upstream("local", "dag", "example_failing") == {("partner_feed",)}
    assert upstream("local", "dag", "example_mapped") == {("monthly_partitions",), ("monthly_report",)}
    assert {node["groupName"] for node in nodes.values()} == {"local"}


def test_each_run_leaves_one_record_on_its_dag_asset_with_the_tasks_summed_up(demo: Demo) -> None:
    failing = _records(demo, "local", "dag", "example_failing")
    assert len(failing) == 1
    assert failing[0]["airflow/state"] == "failed"
    assert failing[0]["airflow/failed_tasks"] == "flaky_call"
    assert failing[0]["airflow/tasks"] == "1 success, 1 failed (flaky_call)"
    mapped = _records(demo, "local", "dag", "example_mapped")
    assert [record["airflow/tasks"] for record in mapped] == ["5 success"]  # 1 + 3 mapped instances + 1
    # The task-mapped asset keeps a record per task instance.
    assert len(_records(demo, "monthly_partitions")) == 3


def test_the_catalog_shows_the_failure_in_red_in_a_browser(demo: Demo, tmp_path: Path) -> None:
    with chromium_session(tmp_path / "browser") as browser:
        pictures = take_pictures(browser, demo.dagster_url, tmp_path)
        open_page(browser, f"{demo.dagster_url}/assets", "partner_feed", "warehouse_orders")
        failed = status_colour(browser, "partner_feed", "Never materialized")
        succeeded = status_colour(browser, "warehouse_orders", "Materialized")
        checks_page = open_page(
            browser, f"{demo.dagster_url}/assets/partner_feed?view=checks", "airflow_task_succeeded"
        )
    for picture in (pictures.catalog, pictures.lineage):
        assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
    assert failed is not None, "partner_feed's status is in the catalog"
    red, green, blue = failed
    assert red > 100 and red > 2 * green and red > 2 * blue, f"partner_feed's status is red, not rgb{failed}"
    assert succeeded is not None and succeeded[1] > succeeded[0], f"warehouse_orders is green, not rgb{succeeded}"
    assert "Failed" in checks_page
    assert "example_failing" in pictures.lineage_text
