"""Issue 9's targets, judged from a results dictionary (what was met, missed, or not measured here),
and from :mod:`bench.sustained`'s results when there are some."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# What "a fixed small number of REST requests per interval" allows: a sweep asks for the runs that
# ended since its mark and, when some did, their task instances (one call per 100 of each).
GAP_REPAIR_MAX_PER_SWEEP = 4
SUSTAINED_RATE, SUSTAINED_MINUTES, SUSTAINED_MAX_LAG = 100, 10, 10.0
# Streaming mode: p50 at most this many seconds and this many times below Airlift's fastest; its
# throughput this many times Dagster's per-event loop on PostgreSQL (at least the loop on SQLite).
STREAM_MAX_P50, STREAM_FACTOR = 0.5, 5
REPLAY_EVENTS, REPLAY_MAX_SECONDS = 100_000, 200


def _phase(results: dict[str, Any], airflow: str) -> list[dict[str, Any]]:
    return [phase for phase in results.get("latency", []) if phase["airflow"] == airflow]


def _by_kind(phase: dict[str, Any], kind: str, name: str | None = None) -> dict[str, Any] | None:
    for obs in phase["observers"]:
        if obs["kind"] == kind and (name is None or obs["observer"] == name):
            return obs
    return None


def _consumer(obs: dict[str, Any]) -> str:
    """``"stream"``, ``"sensor"`` or ``"airlift"`` (results written before the stream was measured: by kind)."""
    return str(obs.get("consumer") or ("airlift" if obs["kind"] == "airlift" else "sensor"))


def _by_consumer(phase: dict[str, Any], consumer: str) -> dict[str, Any] | None:
    return next((obs for obs in phase["observers"] if _consumer(obs) == consumer), None)


def _latency_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for phase in _phase(results, "2.11"):
        ours = _by_consumer(phase, "sensor")
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


def _stream_latency_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Streaming mode p50 <= 0.5 s and >= 5x below Airlift's fastest, per storage and end (task, DAG run)."""
    target = f"streaming mode p50 <= {STREAM_MAX_P50:g} s and >= {STREAM_FACTOR:g}x below Airlift's fastest"
    found = []
    for phase in _phase(results, "2.11"):
        stream = _by_consumer(phase, "stream")
        fastest = _by_kind(phase, "airlift", "airlift_fast")
        if stream is None or fastest is None:
            continue
        for kind in ("task_end", "run_end"):
            mine, theirs = stream[f"latency_{kind}"]["p50"], fastest[f"latency_{kind}"]["p50"]
            met = mine is not None and theirs is not None and mine <= STREAM_MAX_P50 and theirs >= STREAM_FACTOR * mine
            ratio = round(theirs / mine, 1) if mine and theirs else None
            done = stream["completeness"]
            found.append(
                {
                    "target": f"{target} ({kind.replace('_', ' ')}, {phase['storage']})",
                    "measured": f"{mine} s vs {theirs} s ({ratio}x); recorded {done['recorded']} of "
                    f"{done['reported_by_airflow']}",
                    "met": met,
                }
            )
    if not found:
        found.append({"target": target, "measured": "not measured (no stream in the latency phases)", "met": None})
    return found


def _stream_throughput_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """airstream stream >= 5x the per-event loop on PostgreSQL, and never below it on SQLite."""
    found = []
    for entry in results.get("throughput", []):
        if "stream_vs_loop" not in entry:
            continue
        floor = STREAM_FACTOR if entry["storage"] == "postgres" else 1
        found.append(
            {
                "target": f"airstream stream >= {floor:g}x Dagster's per-event loop ({entry['storage']})",
                "measured": f"{entry['stream_vs_loop']}x ({entry['events_per_second']['stream']:,} vs "
                f"{entry['events_per_second']['dagster_loop']:,} events/s, {entry['events']:,} events)",
                "met": entry["stream_vs_loop"] >= floor,
            }
        )
    if not found:
        found.append(
            {
                "target": f"airstream stream >= {STREAM_FACTOR:g}x the per-event loop on PostgreSQL "
                "(never below it on SQLite)",
                "measured": "not measured (no stream in the throughput section)",
                "met": None,
            }
        )
    return found


def _replay_scale_target(replays: list[dict[str, Any]]) -> dict[str, Any]:
    """From :mod:`bench.replay`'s results (``replay-<storage>.json``): the PostgreSQL run of at least
    REPLAY_EVENTS events."""
    target = f"{REPLAY_EVENTS:,}-event replay within {REPLAY_MAX_SECONDS:g} s (postgres)"
    runs = [run for run in replays if run.get("storage") == "postgres" and run.get("events", 0) >= REPLAY_EVENTS]
    if not runs:
        measured = f"not measured (python -m bench.replay --events {REPLAY_EVENTS} --storage postgres writes it)"
        return {"target": target, "measured": measured, "met": None}
    run = runs[-1]
    rates = run["asset_events_per_second"]
    measured = (
        f"{run['events']:,} events in {run['replay_seconds']} s ({rates['replay']:,} asset events/s, "
        f"{run['replay_vs_loop']}x Dagster's per-event loop)"
    )
    return {"target": target, "measured": measured, "met": run["replay_seconds"] <= REPLAY_MAX_SECONDS}


def _gap_repair_target(results: dict[str, Any]) -> list[dict[str, Any]]:
    per_count: dict[int, list[float]] = {}
    for entry in results.get("load", []):
        for name in entry.get("gap_repair", {}):
            figures = entry["observers"].get(name, {})
            for window in ("idle", "runs"):
                per_sweep = figures.get(f"{window}_requests_per_sweep")
                if per_sweep is not None:
                    per_count.setdefault(entry["dag_count"], []).append(per_sweep)
    if not per_count:
        return []
    every = [value for values in per_count.values() for value in values]
    spread = max(every) - min(every)
    measured = "; ".join(
        f"{count:,} DAGs: {' / '.join(f'{v:g}' for v in values)}" for count, values in sorted(per_count.items())
    )
    met = max(every) <= GAP_REPAIR_MAX_PER_SWEEP and spread <= 1
    note = "" if len(per_count) > 1 else " (one DAG count only)"
    return [
        {
            "target": "gap repair: a fixed small number of REST requests per interval whatever the DAG count",
            "measured": f"requests per sweep idle / under runs: {measured}{note}",
            "met": met if len(per_count) > 1 else (None if met else False),
        }
    ]


def read_runs(folder: Path, pattern: str) -> list[dict[str, Any]]:
    """The results files in ``folder`` matching ``pattern`` (``sustained*.json`` of
    :mod:`bench.sustained`, ``replay-*.json`` of :mod:`bench.replay`), by name."""
    found = []
    for path in sorted(folder.glob(pattern)):
        try:
            found.append(dict(json.loads(path.read_text())))
        except (OSError, ValueError):
            continue
    return found


def read_sustained(folder: Path) -> list[dict[str, Any]]:
    """:mod:`bench.sustained`'s results in ``folder`` (``sustained*.json``, one per run kept)."""
    return read_runs(folder, "sustained*.json")


def _sustained_target(sustained: dict[str, Any] | None) -> dict[str, Any]:
    target = (
        f"sustained {SUSTAINED_RATE} task events/s for {SUSTAINED_MINUTES} minutes with lag under "
        f"{SUSTAINED_MAX_LAG:g} s"
    )
    if not sustained:
        return {"target": target, "measured": "not measured (no docs/bench/sustained*.json)", "met": None}
    target += f" ({sustained['consumer']}, {sustained['storage']})"
    lag, once = sustained["lag_seconds"], sustained["exactly_once"]
    measured = (
        f"{sustained['rate']:g}/s for {sustained['minutes']:g} min: "
        f"lag p50 / p95 / max {lag['p50']} / {lag['p95']} / {lag['max']} s, at most "
        f"{sustained['max_lag_events']:,} events behind; {once['duplicates']} duplicates, "
        f"{once['missing']:,} of {once['published']:,} unrecorded when it stopped"
    )
    full = sustained["rate"] >= SUSTAINED_RATE and sustained["minutes"] >= SUSTAINED_MINUTES
    met = lag["max"] is not None and lag["max"] < SUSTAINED_MAX_LAG and bool(once["ok"])
    if not full:
        return {"target": target, "measured": f"{measured} (a shorter or slower run)", "met": None if met else False}
    return {"target": target, "measured": measured, "met": met}


def evaluate(
    results: dict[str, Any],
    sustained: list[dict[str, Any]] | None = None,
    replays: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """One entry per target: ``target``, ``measured`` and ``met`` (True, False, or None when not measured);
    ``sustained`` holds :mod:`bench.sustained`'s results (:func:`read_sustained`): one entry for each;
    ``replays`` :mod:`bench.replay`'s (``read_runs(folder, "replay-*.json")``)."""
    found = _latency_targets(results)
    ours = [
        figures
        for entry in results.get("load", [])
        for name, figures in entry["observers"].items()
        if entry["kinds"].get(name) == "airstream" and name not in entry.get("gap_repair", {})
    ]
    streamed = sorted(
        {
            entry["dag_count"]
            for entry in results.get("load", [])
            for name in entry["observers"]
            if entry.get("consumers", {}).get(name) == "stream"
        }
    )
    if ours:
        requests = sum(figures["idle_requests"] + figures["runs_requests"] for figures in ours)
        found.append(
            {
                "target": "zero REST requests in steady state on the event path",
                "measured": f"{requests} requests over all DAG counts"
                + (
                    f" (the sensor's; the stream's at {', '.join(f'{n:,}' for n in streamed)} DAGs)" if streamed else ""
                ),
                "met": requests == 0,
            }
        )
    found += _gap_repair_target(results)
    overhead = results.get("overhead") or {}
    if overhead.get("timing"):
        up, down = overhead["timing"]["broker_up"]["p50"], overhead["timing"]["broker_down"]["p50"]
        found += [
            {"target": "listener p50 <= 10 ms, broker up", "measured": f"{up} ms", "met": up <= 10},
            {"target": "listener p50 <= 50 ms, broker down", "measured": f"{down} ms", "met": down <= 50},
        ]
    if overhead.get("memory"):
        extra = overhead["memory"]["extra_mb"]
        found.append({"target": "listener extra memory <= 30 MB", "measured": f"{extra} MB", "met": extra <= 30})
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
                "target": f"replay >= {floor}x Dagster's per-event loop ({storage})",
                "measured": f"{entry['replay_vs_loop']}x",
                "met": entry["replay_vs_loop"] >= floor,
            }
        )
    found += _stream_latency_targets(results)
    found += _stream_throughput_targets(results)
    found.append(_replay_scale_target(replays or []))
    found += [_sustained_target(run) for run in sustained] if sustained else [_sustained_target(None)]
    return found
