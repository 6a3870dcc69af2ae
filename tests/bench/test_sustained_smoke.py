"""``python -m bench.sustained`` end to end, briefly: the embedded broker, a fresh SQLite Dagster
instance, the sensor consumer in its own process, 20 events a second for 30 seconds.

Checks the results file's shape and the exactly-once accounting (every event published is
recorded once, once the run drained); it asserts no lag target (that is the benchmark's job,
on a quiet machine, over ten minutes).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.sustained import main

pytestmark = [pytest.mark.integration, pytest.mark.bench]


def test_sustained_smoke_records_every_event_once(tmp_path: Path) -> None:
    out = tmp_path / "sustained.json"
    assert main(["--rate", "20", "--minutes", "0.5", "--sample-seconds", "2", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert (data["rate"], data["minutes"], data["storage"], data["consumer"]) == (20, 0.5, "sqlite", "sensor")
    assert data["producer"]["events"] == 600
    once = data["exactly_once"]
    assert data["drained_seconds_after_last_event"] is not None, once
    assert once == {**once, "published": 600, "recorded_distinct": 600, "duplicates": 0, "missing": 0, "ok": True}
    samples = data["samples"]
    assert samples[-1]["recorded"] == 600 and samples[-1]["lag_events"] == 0
    assert max(sample["published"] for sample in samples) == 600
    assert data["lag_seconds"]["max"] > 0 and data["max_lag_events"] > 0  # the sensor ticks: some lag is seen
    assert data["machine"]["nproc"] >= 1
