"""The comparison harness (``python -m bench.compare --quick``) end to end, on real parts.

One quick run: the broker, Airflow 2.11 with the listener watched by airstream's sensor, by
``airstream stream`` (into a Dagster instance of its own), by Airlift at 30 s and at its fastest,
and (for its REST load) by airstream's sensor with gap repair; Airflow 3.3 watched by airstream's
sensor and stream; Dagster on SQLite (and PostgreSQL for throughput).
Checks that ``results.json`` holds every section with plausible, non-empty figures and that the
picture is drawn; it asserts no timing target (those are the harness's job, on a quiet machine).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from bench.compare.targets import GAP_REPAIR_MAX_PER_SWEEP

pytestmark = [pytest.mark.integration, pytest.mark.bench]


def _positive(figures: dict[str, Any], *names: str) -> None:
    for name in names:
        assert isinstance(figures[name], (int, float)) and figures[name] > 0, (name, figures)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    if importlib.util.find_spec("dagster_airlift") is None:
        pytest.fail("the bench extra is missing: pip install -e '.[bench]' (scripts/bench installs it)")
    from bench.compare.__main__ import main

    out = tmp_path_factory.mktemp("bench-compare")
    assert main(["--quick", "--out", str(out)]) == 0
    return json.loads((out / "results.json").read_text()), out


def test_latency_and_completeness_per_observer(results: tuple[dict[str, Any], Path]) -> None:
    data, _ = results
    phases = {(phase["airflow"], phase["storage"]): phase for phase in data["latency"]}
    assert set(phases) == {("2.11", "sqlite"), ("3.3", "sqlite")}
    side_by_side = phases[("2.11", "sqlite")]
    assert side_by_side["runs"]["runs"] == 5 and side_by_side["runs"]["failed_runs"] >= 1
    by_name = {obs["observer"]: obs for obs in side_by_side["observers"]}
    assert set(by_name) == {"af2", "af2_stream", "airlift_default", "airlift_fast"}
    assert {obs["observer"] for obs in phases[("3.3", "sqlite")]["observers"]} == {"af3", "af3_stream"}
    for obs in [*side_by_side["observers"], *phases[("3.3", "sqlite")]["observers"]]:
        _positive(obs["latency_run_end"], "count", "p50", "max")
        _positive(obs["latency_task_end"], "count", "p50", "max")
        assert obs["latency_run_end"]["p50"] < 600, obs  # seconds: a clock or matching error, not a slow machine
    for name in ("af2", "af2_stream"):
        ours = by_name[name]["completeness"]
        assert ours["reported_by_airflow"] > 0 and ours["recorded"] == ours["reported_by_airflow"], (name, ours)
    for stream in (
        by_name["af2_stream"],
        *(o for o in phases[("3.3", "sqlite")]["observers"] if o["observer"] == "af3_stream"),
    ):
        assert stream["consumer"] == "stream" and stream["stream_exit_code"] == 0, stream  # stopped by SIGTERM, cleanly
    airlift = by_name["airlift_default"]["completeness"]
    assert airlift["missed"].get("run failed", 0) >= 1, airlift  # Airlift records successful runs only


def test_load_overhead_and_throughput(results: tuple[dict[str, Any], Path]) -> None:
    data, _ = results
    load = data["load"][0]
    assert load["dag_count"] == 10
    for name in ("af2", "af2_stream"):  # neither is given an Airflow URL: their proxies count nothing
        assert load["observers"][name]["idle_requests"] + load["observers"][name]["runs_requests"] == 0
    assert load["consumers"]["af2_stream"] == "stream"
    for name in ("airlift_default", "airlift_fast"):
        _positive(load["observers"][name], "startup_requests", "runs_requests")
    assert load["gap_repair"] == {"af2_gap": 5}  # --quick sweeps every 5 s
    gap = load["observers"]["af2_gap"]
    _positive(gap, "startup_requests", "idle_sweeps", "idle_requests_per_sweep", "runs_sweeps")
    assert gap["idle_requests_per_sweep"] <= GAP_REPAIR_MAX_PER_SWEEP, gap  # a sweep's calls, not one per DAG
    assert gap["runs_requests_per_sweep"] <= GAP_REPAIR_MAX_PER_SWEEP, gap
    _positive(data["overhead"]["timing"]["broker_up"], "count", "p50")
    _positive(data["overhead"]["timing"]["broker_down"], "count", "p50")
    assert data["overhead"]["memory"]["after_mb"] > data["overhead"]["memory"]["before_mb"] > 50
    assert {entry["storage"] for entry in data["throughput"]} == {"sqlite", "postgres"}
    for entry in data["throughput"]:
        _positive(entry["events_per_second"], "sensor", "replay", "stream", "dagster_loop")
        _positive(entry, "stream_vs_loop")
        assert entry["stream"]["records"] == entry["events"] and entry["stream"]["exit_code"] == 0, entry["stream"]
        assert 0 < entry["profile"]["report_runless_asset_event_share"] <= 1


def test_targets_and_picture(results: tuple[dict[str, Any], Path]) -> None:
    data, out = results
    assert {target["met"] for target in data["targets"]} <= {True, False, None}
    replay = [t for t in data["targets"] if t["target"].startswith("100,000-event replay")]
    assert len(replay) == 1 and replay[0]["met"] is None, replay  # bench.replay's, not measured here
    streaming = [t for t in data["targets"] if t["target"].startswith("streaming mode p50")]
    assert len(streaming) == 2 and all("sqlite" in t["target"] for t in streaming), streaming  # task and run end
    assert all(t["met"] is not None for t in streaming), streaming
    stream_throughput = [t for t in data["targets"] if t["target"].startswith("airstream stream >=")]
    assert {t["target"].split("(")[-1] for t in stream_throughput} == {"sqlite)", "postgres)"}, stream_throughput
    gap_repair = [t for t in data["targets"] if t["target"].startswith("gap repair")]
    assert len(gap_repair) == 1 and "10 DAGs" in gap_repair[0]["measured"], gap_repair
    assert (out / "latency.png").stat().st_size > 10_000
