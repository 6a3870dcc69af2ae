"""Installing ``airstream[airflow]`` into an Airflow 2.11.2 environment, under the pins Airflow brought,
keeps Airflow 2.11.2, leaves a consistent environment, and registers the plugin once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack import REPO_ROOT
from devstack.airflow2 import (
    AIRFLOW2_VERSION,
    Airflow2Venv,
    airflow2_env,
    run_airflow2,
    source_fingerprint,
)

pytestmark = pytest.mark.integration


def _pins(freeze_output: str) -> dict[str, str]:
    pins = {}
    for line in freeze_output.splitlines():
        name, separator, version = line.partition("==")
        if separator:
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_the_airflow_extra_keeps_airflow_2_11_2_and_registers_the_plugin_once(
    airflow2_venv: Airflow2Venv, tmp_path: Path
) -> None:
    env = airflow2_env(
        airflow2_venv, tmp_path / "airflow", bootstrap_servers="127.0.0.1:9", topic="unused", instance_name="install"
    )

    version = run_airflow2(airflow2_venv, env, "version")
    assert version.returncode == 0, version.stderr[-2000:]
    assert version.stdout.strip() == AIRFLOW2_VERSION

    check = airflow2_venv.pip("check")
    assert check.returncode == 0, check.stdout + check.stderr

    # Nothing Airflow installed moved: every pin of the constraints file taken before the extra still holds.
    constraints = _pins(airflow2_venv.constraints.read_text())
    assert constraints["apache-airflow"] == AIRFLOW2_VERSION
    installed = _pins(airflow2_venv.pip("freeze").stdout)
    moved = {name: (pin, installed.get(name)) for name, pin in constraints.items() if installed.get(name) != pin}
    assert not moved, moved
    assert "kafka-python" in installed, "the extra brings the listener's Kafka client"

    plugins = run_airflow2(airflow2_venv, env, "plugins", "--output", "json")
    assert plugins.returncode == 0, plugins.stderr[-2000:]
    names = [plugin["name"] for plugin in json.loads(plugins.stdout)]
    assert names.count("airstream") == 1, names


def test_the_environment_runs_the_current_sources_installed_not_editable(airflow2_venv: Airflow2Venv) -> None:
    stamp = json.loads((airflow2_venv.path / ".airstream-stamp.json").read_text())
    assert stamp["sources"] == source_fingerprint()
    located = airflow2_venv.pip("show", "--files", "airstream")
    assert located.returncode == 0, located.stderr
    assert "Editable project location" not in located.stdout
    site_packages = next(airflow2_venv.path.glob("lib/python*/site-packages"))
    for module in ("airflow_listener/hooks.py", "airflow_listener/event_builder.py", "schemas/events.py"):
        assert (site_packages / "airstream" / module).read_bytes() == (REPO_ROOT / module).read_bytes(), module
