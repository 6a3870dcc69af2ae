"""What each observer stored in Dagster, matched against Airflow's truth: latency and completeness.

An observer's records are found by asset key (see :mod:`bench.compare.definitions`): DAG runs on
``[name, "dag", dag_id]``, tasks on ``[name, "task", dag_id, task_id]``; airstream's carry
``airflow/*`` metadata (any outcome), Airlift's are materializations (successes) with
``dagster-airlift/airflow-run-id``. The latency of a terminal state is the time its first
record was stored (Dagster's event-log timestamp) minus Airflow's end date.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.compare.runs import Terminal
from devstack.dagster import RecordedAssetEvent

AIRLIFT_RUN_ID = "dagster-airlift/airflow-run-id"
_AIRSTREAM_TERMINAL = {
    "dag_run.success",
    "dag_run.failed",
    "task_instance.success",
    "task_instance.failed",
    "task_instance.upstream_failed",
    "task_instance.skipped",
}

Key = tuple[str, str, str, str | None]


@dataclass(frozen=True)
class Observer:
    """One observer: ``kind`` is ``"airstream"`` or ``"airlift"``; an airstream observer with
    ``gap_repair_interval`` also sweeps Airflow's REST API that often (seconds). One with
    ``stream_of`` is ``airstream stream`` for that Airflow instance (the listener's name), recording
    into a Dagster instance of its own (:mod:`bench.compare.stream_process`) on that instance's
    asset keys; the others are code locations of the phase's ``dagster dev``."""

    name: str
    kind: str
    label: str  # what the table calls it, e.g. "Airlift (30 s)"
    gap_repair_interval: float | None = None
    stream_of: str | None = None

    @property
    def key_prefix(self) -> str:
        """The first part of the asset keys it records (its name, or the streamed Airflow instance's)."""
        return self.stream_of or self.name

    @property
    def consumer(self) -> str:
        """``"stream"``, ``"sensor"`` (airstream's) or ``"airlift"``."""
        return "airlift" if self.kind == "airlift" else "stream" if self.stream_of else "sensor"


def stored_times(observer: Observer, records: Iterable[RecordedAssetEvent]) -> dict[Key, float]:
    """The first storage time of each terminal state ``observer`` recorded."""
    found: dict[Key, float] = {}
    for record in records:
        parts = record.asset_key.split("/")
        if len(parts) < 3 or parts[0] != observer.key_prefix:
            continue
        key = _airstream_key(record, parts) if observer.kind == "airstream" else _airlift_key(record, parts)
        if key is not None and (key not in found or record.timestamp < found[key]):
            found[key] = record.timestamp
    return found


def _airstream_key(record: RecordedAssetEvent, parts: list[str]) -> Key | None:
    event_type = str(record.metadata.get("airflow/event_type", ""))
    if parts[1] not in ("dag", "task") or event_type not in _AIRSTREAM_TERMINAL:
        return None
    run_id, dag_id = str(record.metadata["airflow/run_id"]), str(record.metadata["airflow/dag_id"])
    if event_type.startswith("dag_run."):
        return ("run", dag_id, run_id, None)
    return ("task", dag_id, run_id, str(record.metadata["airflow/task_id"]))


def _airlift_key(record: RecordedAssetEvent, parts: list[str]) -> Key | None:
    if record.kind != "materialization" or AIRLIFT_RUN_ID not in record.metadata:
        return None
    run_id = str(record.metadata[AIRLIFT_RUN_ID])
    if parts[1] == "dag":
        return ("run", parts[2], run_id, None)
    if parts[1] == "task" and len(parts) == 4:
        return ("task", parts[2], run_id, parts[3])
    return None


def summarize(latencies: list[float]) -> dict[str, Any]:
    """count, p50, p95, max (seconds, 2 decimals); ``None`` figures when empty."""
    if not latencies:
        return {"count": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "count": len(ordered),
        "p50": round(statistics.median(ordered), 2),
        "p95": round(p95, 2),
        "max": round(ordered[-1], 2),
    }


def measure(observer: Observer, terminals: list[Terminal], stored: dict[Key, float]) -> dict[str, Any]:
    """Latency (task end and DAG-run end) and completeness of one observer against Airflow's truth."""
    latencies: dict[str, list[float]] = {"task": [], "run": []}
    missed: Counter[str] = Counter()
    for terminal in terminals:
        when = stored.get(terminal.key())
        if when is None:
            missed[f"{terminal.kind} {terminal.state}"] += 1
        else:
            latencies[terminal.kind].append(when - terminal.end)
    return {
        "observer": observer.name,
        "label": observer.label,
        "kind": observer.kind,
        "consumer": observer.consumer,
        "latency_task_end": summarize(latencies["task"]),
        "latency_run_end": summarize(latencies["run"]),
        "samples": {kind: [round(value, 3) for value in values] for kind, values in latencies.items()},
        "completeness": {
            "reported_by_airflow": len(terminals),
            "recorded": len(terminals) - sum(missed.values()),
            "missed": dict(sorted(missed.items())),
        },
    }


def all_recorded(stored: dict[Key, float], terminals: list[Terminal], kinds: tuple[str, ...] = ("success",)) -> bool:
    """Whether every terminal state whose state is in ``kinds`` is in ``stored``."""
    return all(terminal.key() in stored for terminal in terminals if terminal.state in kinds)
