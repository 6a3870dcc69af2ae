"""Issue 9's targets, judged from a results dictionary (what was met, missed, or not measured here)."""

from __future__ import annotations

from typing import Any


def _phase(results: dict[str, Any], airflow: str) -> list[dict[str, Any]]:
    return [phase for phase in results.get("latency", []) if phase["airflow"] == airflow]


def _by_kind(phase: dict[str, Any], kind: str, name: str | None = None) -> dict[str, Any] | None:
    for obs in phase["observers"]:
        if obs["kind"] == kind and (name is None or obs["observer"] == name):
            return obs
    return None


def _latency_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for phase in _phase(results, "2.11"):
        ours = _by_kind(phase, "airstream")
        default = _by_kind(phase, "airlift", "airlift_default")
        if ours is None or default is None:
            continue
        for kind in ("task_end", "run_end"):
            mine, theirs = ours[f"latency_{kind}"]["p50"], default[f"latency_{kind}"]["p50"]
            met = mine is not None and theirs is not None and mine <= 4 and theirs >= 4 * mine
            ratio = round(theirs / mine, 1) if mine and theirs else None
            found.append(
                {
                    "target": f"sensor p50 ({kind.replace('_', ' ')}) <= 4 s and >= 4x below Airlift's default "
                    f"({phase['storage']})",
                    "measured": f"{mine} s vs {theirs} s ({ratio}x)",
                    "met": met,
                }
            )
    return found


def evaluate(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per target: ``target``, ``measured`` and ``met`` (True, False, or None when not measured)."""
    found = _latency_targets(results)
    ours = [
        figures
        for entry in results.get("load", [])
        for name, figures in entry["observers"].items()
        if entry["kinds"].get(name) == "airstream"
    ]
    if ours:
        requests = sum(figures["idle_requests"] + figures["runs_requests"] for figures in ours)
        found.append(
            {
                "target": "zero REST requests in steady state on the event path",
                "measured": f"{requests} requests over all DAG counts",
                "met": requests == 0,
            }
        )
    overhead = results.get("overhead")
    if overhead:
        up, down = overhead["timing"]["broker_up"]["p50"], overhead["timing"]["broker_down"]["p50"]
        extra = overhead["memory"]["extra_mb"]
        found += [
            {"target": "listener p50 <= 10 ms, broker up", "measured": f"{up} ms", "met": up <= 10},
            {"target": "listener p50 <= 50 ms, broker down", "measured": f"{down} ms", "met": down <= 50},
            {"target": "listener extra memory <= 30 MB", "measured": f"{extra} MB", "met": extra <= 30},
        ]
    for entry in results.get("throughput", []):
        storage = entry["storage"]
        found.append(
            {
                "target": f"sensor >= 90% of Dagster's per-event loop ({storage})",
                "measured": f"{entry['sensor_vs_loop']:.0%}",
                "met": entry["sensor_vs_loop"] >= 0.9,
            }
        )
        floor = 5 if storage == "postgres" else 1
        found.append(
            {
                "target": f"replay >= {floor}x Dagster's per-event loop ({storage}; batch writes are issue 9 part 2)",
                "measured": f"{entry['replay_vs_loop']}x",
                "met": entry["replay_vs_loop"] >= floor,
            }
        )
    for missing in (
        "streaming mode p50 <= 0.5 s and >= 5x below Airlift's fastest",
        "airstream stream >= 5x the per-event loop on PostgreSQL; 100,000-event replay within 200 s",
        "sustained 100 task events/s for 10 minutes with lag under 10 s",
    ):
        found.append(
            {"target": missing, "measured": "not measured (streaming mode and scale-out not built yet)", "met": None}
        )
    return found
