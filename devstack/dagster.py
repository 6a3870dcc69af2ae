"""A local Dagster (``dagster dev``: webserver and daemon) loading one definitions file."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devstack import REPO_ROOT
from devstack.processes import ManagedProcess, StackError, free_port

EXAMPLE_DEFINITIONS = Path(__file__).parent / "example_definitions.py"


def dagster_executable() -> str:
    candidate = Path(sys.executable).parent / "dagster"
    return str(candidate) if candidate.exists() else "dagster"


def start_dagster(
    home: Path,
    *,
    env: Mapping[str, str],
    log_dir: Path,
    definitions: Path = EXAMPLE_DEFINITIONS,
    port: int | None = None,
    timeout: float = 90,
    instance_config: str = "",
) -> tuple[ManagedProcess, str]:
    """Start ``dagster dev`` with its instance in ``home``; returns the process and the UI's URL.

    ``instance_config`` is YAML appended to the generated ``dagster.yaml``, e.g.
    ``"run_retries:\\n  enabled: true\\n"`` for Dagster's run retries.
    """
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n" + instance_config)
    return _serve(home, "dagster dev", [dagster_executable(), "dev"], env, log_dir, definitions, port, timeout)


def start_dagster_webserver(
    home: Path,
    *,
    env: Mapping[str, str],
    log_dir: Path,
    definitions: Path = EXAMPLE_DEFINITIONS,
    port: int | None = None,
    timeout: float = 90,
) -> tuple[ManagedProcess, str]:
    """Start only Dagster's webserver (no daemon: no sensor ticks) on the instance in ``home``.

    For looking at what a stopped stack recorded, e.g. the demo's ``.work/demo/dagster``: the UI
    and GraphQL show it as it was, and nothing new is recorded. Returns the process and the URL.
    """
    if not (home / "dagster.yaml").exists():
        raise StackError(f"{home} holds no Dagster instance (no dagster.yaml): run the demo or the stack first")
    webserver = str(Path(dagster_executable()).with_name("dagster-webserver"))
    return _serve(home, "dagster-webserver", [webserver], env, log_dir, definitions, port, timeout)


def _serve(
    home: Path,
    name: str,
    command: list[str],
    env: Mapping[str, str],
    log_dir: Path,
    definitions: Path,
    port: int | None,
    timeout: float,
) -> tuple[ManagedProcess, str]:
    """Run ``command`` serving ``definitions`` on the instance in ``home`` until its UI answers."""
    tmp = home / "tmp"
    tmp.mkdir(exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    # The repository's root on the path, for definitions that import devstack (not in the wheel).
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    process_env = {**os.environ, **env, "DAGSTER_HOME": str(home), "TMPDIR": str(tmp), "PYTHONPATH": python_path}
    process = ManagedProcess.start(
        name,
        [*command, "-f", str(definitions), "-h", "127.0.0.1", "-p", str(port)],
        env=process_env,
        cwd=home,
        log_path=log_dir / f"{name.replace(' ', '-')}.log",
    )
    try:
        process.wait_until(lambda: _answers(url), timeout=timeout, what="the Dagster webserver to answer")
    except BaseException:
        process.stop()
        raise
    return process, url


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None, timeout: float = 30) -> dict[str, Any]:
    """Ask the Dagster webserver at ``url`` a GraphQL ``query``; returns ``data``, raises on errors."""
    response = httpx.post(f"{url}/graphql", json={"query": query, "variables": dict(variables or {})}, timeout=timeout)
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise RuntimeError(f"Dagster's GraphQL API answered with errors: {body['errors']}")
    data: dict[str, Any] = body["data"]
    return data


def _answers(url: str) -> bool:
    return httpx.get(f"{url}/server_info", timeout=2).status_code == 200


@dataclass(frozen=True)
class RecordedAssetEvent:
    """One asset event stored in a Dagster instance, flattened for printing and assertions."""

    storage_id: int
    kind: str  # "materialization" or "observation"
    asset_key: str
    metadata: dict[str, Any]
    timestamp: float
    partition: str | None = None


def recorded_asset_events(instance: Any, after_storage_id: int = 0) -> list[RecordedAssetEvent]:
    """Every materialization and observation stored after ``after_storage_id``, oldest first."""
    from dagster import AssetRecordsFilter

    found: list[RecordedAssetEvent] = []
    for asset_key in instance.get_asset_keys():
        records_filter = AssetRecordsFilter(asset_key=asset_key, after_storage_id=after_storage_id)
        for kind, fetch in (
            ("materialization", instance.fetch_materializations),
            ("observation", instance.fetch_observations),
        ):
            cursor = None
            while True:
                result = fetch(records_filter, limit=500, cursor=cursor, ascending=True)
                for record in result.records:
                    entry = record.event_log_entry
                    event = entry.asset_materialization or entry.asset_observation
                    found.append(
                        RecordedAssetEvent(
                            storage_id=record.storage_id,
                            kind=kind,
                            asset_key=asset_key.to_user_string(),
                            metadata={key: getattr(value, "value", value) for key, value in event.metadata.items()},
                            timestamp=entry.timestamp,
                            partition=event.partition,
                        )
                    )
                if not result.has_more:
                    break
                cursor = result.cursor
    return sorted(found, key=lambda event: event.storage_id)


def tick_and_store(sensor: Any, instance: Any, cursor: str | None, definitions: Any = None) -> tuple[str | None, int]:
    """Evaluate ``sensor`` once and store its asset events, as Dagster's daemon does; returns the
    new cursor and how many asset events were stored."""
    from dagster import build_sensor_context

    result = sensor.evaluate_tick(build_sensor_context(instance=instance, cursor=cursor, definitions=definitions))
    for asset_event in result.asset_events:
        instance.report_runless_asset_event(asset_event)
    return result.cursor, len(result.asset_events)


def tick_with_log(sensor: Any, cursor: str | None, instance: Any) -> tuple[Any, list[logging.LogRecord]]:
    """Evaluate ``sensor`` once (nothing stored); returns its ``SensorResult`` and what it logged."""
    from dagster import SensorResult, build_sensor_context

    context = build_sensor_context(cursor=cursor, instance=instance)
    handler = _Recording()
    context.log.addHandler(handler)
    try:
        result = sensor(context)
    finally:
        context.log.removeHandler(handler)
    assert isinstance(result, SensorResult), f"the sensor returned {type(result).__name__}, not a SensorResult"
    return result, handler.records


class _Recording(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
