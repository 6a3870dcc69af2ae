"""The facts of the machine a benchmark's figures come from (written into each results file)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from devstack import REPO_ROOT


def machine() -> dict[str, Any]:
    """Cores, memory, CPU model, load average now, Python version and the checkout's commit."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_kb = int(
        next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if "MemTotal" in line)
    )
    return {
        "nproc": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "cpu_model": model,
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "git_commit": subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
        or "unknown (not a git checkout)",
    }
