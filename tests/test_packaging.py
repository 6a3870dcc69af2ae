"""What users install is what they run: the wheel's contents, its import names, the line between
the two sides, one version string."""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import airstream
import airstream.schemas
from devstack.airflow2 import repository_snapshot

ROOT = Path(__file__).parents[1]
PACKAGES = ("schemas", "airflow_listener", "dagster_consumer")
# What each package may import, besides the standard library and itself.
ALLOWED = {
    "schemas": {"pydantic"},
    "airflow_listener": {"airflow", "kafka", "pluggy", "sqlalchemy", "requests", "yaml", "airstream.schemas"},
    # sqlalchemy comes with dagster; dagster_postgres only where the instance is on PostgreSQL
    # (batch_store imports it lazily and falls back without it).
    "dagster_consumer": {
        "dagster",
        "dagster_postgres",
        "sqlalchemy",
        "kafka",
        "requests",
        "urllib3",
        "airstream.schemas",
    },
}


def _imports(package: str) -> Iterator[tuple[Path, str]]:
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                yield from ((path, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_its_side_installs(package: str) -> None:
    stdlib = sys.stdlib_module_names | {"__future__"}
    wrong = []
    for path, module in _imports(package):
        root = module.split(".")[0]
        # `airstream` itself holds only the version string, which both sides read.
        if root in stdlib or module == "airstream" or module.startswith(f"airstream.{package}"):
            continue
        if not any(module == allowed or module.startswith(f"{allowed}.") for allowed in ALLOWED[package]):
            wrong.append(f"{path.relative_to(ROOT)}: {module}")
    assert not wrong, "imports across the line between the sides, or by an unprefixed name:\n" + "\n".join(wrong)


def test_the_command_dispatcher_imports_each_side_only_when_its_command_runs() -> None:
    """``airstream/cli.py`` is the one module that reaches both sides, by name and lazily: its own
    imports are the standard library only, so neither side's packages load for the other's commands."""
    dispatcher = ROOT / "airstream" / "cli.py"
    tree = ast.parse(dispatcher.read_text(), filename=str(dispatcher))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= sys.stdlib_module_names | {"__future__"}, imported
    from airstream import cli

    assert set(cli.AIRFLOW_SIDE_COMMANDS.values()) == {"airstream.airflow_listener.proxying.cli"}
    assert cli.DAGSTER_SIDE_CLI == "airstream.dagster_consumer.cli"
    others = [path for path in (ROOT / "airstream").glob("*.py") if path.name not in ("__init__.py", "cli.py")]
    assert not others, f"only the version and the dispatcher live in airstream/ itself: {others}"


def test_the_version_is_one_string() -> None:
    from airstream.airflow_listener import __version__ as listener_version

    assert importlib.metadata.version("airstream") == airstream.__version__ == listener_version


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    with repository_snapshot(ROOT) as source:
        built = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(source), "-w", str(out)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-4000:]
    (path,) = out.glob("airstream-*.whl")
    return zipfile.ZipFile(path)


@pytest.mark.integration
def test_the_wheel_holds_the_two_sides_and_the_contract_only(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"airstream", f"airstream-{airstream.__version__}.dist-info"}, tops
    packages = {name.split("/")[1] for name in names if name.startswith("airstream/") and name.count("/") >= 2}
    assert packages == set(PACKAGES)
    for needed in (
        "airstream/py.typed",
        "airstream/schemas/json/task_instance_event.v1.json",
        "airstream/airflow_listener/hooks.py",
        "airstream/dagster_consumer/sensor.py",
    ):
        assert needed in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "airstream.airflow_listener.plugin:AirstreamPlugin" in wheel.read(entry_points).decode()


def test_a_users_own_schemas_package_neither_shadows_nor_is_shadowed(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    (dags / "schemas").mkdir(parents=True)
    (dags / "schemas" / "__init__.py").write_text("OWNER = 'the DAGs repository'\n")
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import airstream.schemas, schemas;"
        "print(schemas.OWNER); print(airstream.schemas.SCHEMA_VERSION)"
    )
    result = subprocess.run([sys.executable, "-c", probe, str(dags)], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["the DAGs repository", airstream.schemas.SCHEMA_VERSION]
