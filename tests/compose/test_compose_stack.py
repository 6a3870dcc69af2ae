"""Checks, without Docker, that the compose stack in compose/ fits together.

The files are parsed (docker-compose.yml with PyYAML, the Dockerfiles line by line, definitions.py with
``ast``) and cross-checked: the addresses, topic and instance name each side uses, the images and the
extras they install, volumes, ports, health-gated start order and the Dagster workspace.
"""

from __future__ import annotations

import ast
import json
import posixpath
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from packaging.specifiers import SpecifierSet
from packaging.version import Version

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest depends on tomli before Python 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
COMPOSE_DIR = REPO / "compose"
COMPOSE_FILE = COMPOSE_DIR / "docker-compose.yml"
DEFINITIONS_FILE = COMPOSE_DIR.parent / "devstack" / "example_definitions.py"

KAFKA = "kafka"
AIRFLOW = "airflow"
DAGSTER_WEBSERVER = "dagster-webserver"
DAGSTER_DAEMON = "dagster-daemon"
DAGSTER_SERVICES = (DAGSTER_WEBSERVER, DAGSTER_DAEMON)
CLIENT_SERVICES = (AIRFLOW, *DAGSTER_SERVICES)

EXPECTED_DAGS_SOURCE = "../devstack/example_dags"
AIRFLOW_DAGS_FOLDER = "/opt/airflow/dags"


# --------------------------------------------------------------------------------------------------
# Loading and parsing helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} does not exist"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict), f"{COMPOSE_FILE} is not a YAML mapping"
    assert isinstance(data.get("services"), dict), f"{COMPOSE_FILE} has no 'services' mapping"
    return data


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def service(compose: dict, name: str) -> dict:
    svc = compose["services"].get(name)
    assert isinstance(svc, dict), f"service {name!r} is missing from {COMPOSE_FILE.name}"
    return svc


def env(compose: dict, name: str) -> dict[str, str]:
    """A service's environment as strings, from either the mapping or the list form."""
    raw = service(compose, name).get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        return {key: value for key, value in pairs}
    return {key: "" if value is None else str(value) for key, value in raw.items()}


def env_var(compose: dict, name: str, key: str) -> str:
    value = env(compose, name).get(key)
    assert value, f"service {name!r} does not set {key}"
    return value


def csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """'PLAINTEXT://kafka:9092,CONTROLLER://:9093' -> {'PLAINTEXT': ('kafka', 9092), ...}."""
    parsed = {}
    for entry in csv(value):
        match = re.fullmatch(r"([A-Za-z0-9_]+)://(.*):(\d+)", entry)
        assert match, f"listener {entry!r} is not NAME://host:port"
        parsed[match[1]] = (match[2], int(match[3]))
    return parsed


def host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    assert host and port.isdigit(), f"{value!r} is not host:port"
    return host, int(port)


def published_ports(compose: dict, name: str) -> set[tuple[int, int]]:
    """(host port, container port) pairs of a service, from short or long port syntax."""
    pairs = set()
    for entry in service(compose, name).get("ports") or []:
        if isinstance(entry, dict):
            pairs.add((int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        container = int(parts[-1])
        published = int(parts[-2]) if len(parts) >= 2 else container
        pairs.add((published, container))
    return pairs


@dataclass
class Mount:
    source: str
    target: str
    read_only: bool


def mounts(compose: dict, name: str) -> list[Mount]:
    result = []
    for entry in service(compose, name).get("volumes") or []:
        if isinstance(entry, dict):
            result.append(Mount(str(entry.get("source", "")), entry["target"], bool(entry.get("read_only"))))
            continue
        parts = entry.split(":")
        assert len(parts) in (2, 3), f"service {name!r}: volume {entry!r} is not source:target[:mode]"
        read_only = len(parts) == 3 and "ro" in parts[2].split(",")
        result.append(Mount(parts[0], parts[1], read_only))
    return result


def is_named_volume(source: str) -> bool:
    return bool(source) and not source.startswith((".", "/", "~"))


def command_args(compose: dict, name: str) -> list[str]:
    command = service(compose, name).get("command")
    assert command, f"service {name!r} has no command"
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def option_value(args: list[str], *flags: str) -> str | None:
    for index, arg in enumerate(args[:-1]):
        if arg in flags:
            return args[index + 1]
    return None


def build_of(compose: dict, name: str) -> tuple[Path, Path]:
    """(build context, Dockerfile) of a service, both resolved against compose/."""
    build = service(compose, name).get("build")
    assert build, f"service {name!r} has no build section"
    if isinstance(build, str):
        build = {"context": build}
    context = (COMPOSE_DIR / build.get("context", ".")).resolve()
    dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
    return context, dockerfile


@dataclass
class Instruction:
    keyword: str
    args: str
    heredoc: str | None = None


@dataclass
class Dockerfile:
    path: Path
    context: Path
    text: str
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        return [ins for ins in self.instructions if ins.keyword == keyword]

    def run_text(self) -> str:
        return "\n".join(ins.args for ins in self.of("RUN"))

    def copies(self) -> list[tuple[list[str], str, Instruction]]:
        """(sources, absolute destination, instruction) of every COPY from the build context."""
        result = []
        workdir = "/"
        for ins in self.instructions:
            if ins.keyword == "WORKDIR":
                workdir = posixpath.join(workdir, ins.args.strip())
            if ins.keyword != "COPY":
                continue
            tokens = shlex.split(ins.args)
            if any(token.startswith("--from") for token in tokens):
                continue
            tokens = [token for token in tokens if not token.startswith("--")]
            *sources, dest = tokens
            absolute = posixpath.join(workdir, dest)
            if dest.endswith("/") and not absolute.endswith("/"):
                absolute += "/"
            result.append((sources, absolute, ins))
        return result

    def repo_file_at(self, container_path: str) -> Path | None:
        """The build-context file that a COPY puts at container_path, if any."""
        for sources, dest, _ in self.copies():
            for source in sources:
                if source.startswith("<<"):
                    continue
                matches = sorted(self.context.glob(source)) if any(c in source for c in "*?[") else []
                candidates = matches or [self.context / source]
                for candidate in candidates:
                    if candidate.is_dir():
                        prefix = dest.rstrip("/")
                        if container_path.startswith(prefix + "/"):
                            return candidate / container_path[len(prefix) + 1 :]
                    else:
                        target = dest + candidate.name if dest.endswith("/") else dest
                        if target == container_path:
                            return candidate
        return None

    def heredoc_at(self, container_path: str) -> str | None:
        for sources, dest, ins in self.copies():
            if ins.heredoc is not None and any(s.startswith("<<") for s in sources) and dest == container_path:
                return ins.heredoc
        return None


def parse_dockerfile(path: Path, context: Path) -> Dockerfile:
    text = path.read_text()
    parsed = Dockerfile(path=path, context=context, text=text)
    lines = iter(text.splitlines())
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        while stripped.endswith("\\"):
            stripped = stripped[:-1].rstrip() + " " + next(lines, "").strip()
        keyword, _, args = stripped.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip())
        heredoc = re.search(r"<<-?[\"']?([A-Za-z_][A-Za-z0-9_]*)[\"']?", args)
        if heredoc:
            body = []
            for body_line in lines:
                if body_line.strip() == heredoc[1]:
                    break
                body.append(body_line)
            instruction.heredoc = "\n".join(body) + "\n"
        parsed.instructions.append(instruction)
    return parsed


def dockerfile_of(compose: dict, name: str) -> Dockerfile:
    context, path = build_of(compose, name)
    assert path.is_file(), f"service {name!r}: Dockerfile {path} does not exist"
    return parse_dockerfile(path, context)


def airstream_extras(dockerfile: Dockerfile) -> list[set[str]]:
    """The extras of every `pip install <the project>[extras]` in a Dockerfile's RUN instructions."""
    installs = []
    for ins in dockerfile.of("RUN"):
        for command in re.split(r"&&|;|\|\|", ins.args):
            if not re.search(r"\bpip3?\s+install\b", command):
                continue
            for token in shlex.split(command):
                match = re.fullmatch(r"(/opt/airstream/?|\.|airstream)\[([^\]]*)\]", token)
                if match:
                    installs.append({extra.strip() for extra in match[2].split(",") if extra.strip()})
    return installs


def pyproject_pin(requirements: list[str], name: str) -> str:
    for requirement in requirements:
        match = re.fullmatch(rf"{re.escape(name)}\s*==\s*([^\s;,]+)", requirement.strip())
        if match:
            return match[1]
    raise AssertionError(f"pyproject.toml does not pin {name}== in {requirements}")


def kafka_env(compose: dict) -> dict[str, str]:
    return env(compose, KAFKA)


# --------------------------------------------------------------------------------------------------
# The services
# --------------------------------------------------------------------------------------------------


def test_the_four_services_exist(compose: dict) -> None:
    missing = {KAFKA, AIRFLOW, *DAGSTER_SERVICES} - set(compose["services"])
    assert not missing, f"services missing from {COMPOSE_FILE.name}: {sorted(missing)}"


def test_environment_values_are_not_yaml_booleans(compose: dict) -> None:
    # Compose rejects `true`/`false` in an environment mapping; they must be quoted strings.
    for name, svc in compose["services"].items():
        raw = svc.get("environment") or {}
        if isinstance(raw, dict):
            booleans = [key for key, value in raw.items() if isinstance(value, bool)]
            assert not booleans, f"service {name!r}: quote the boolean environment values {booleans}"


def test_named_volumes_are_declared(compose: dict) -> None:
    declared = set(compose.get("volumes") or {})
    for name in compose["services"]:
        for mount in mounts(compose, name):
            if is_named_volume(mount.source):
                assert mount.source in declared, (
                    f"service {name!r} mounts volume {mount.source!r}, which the top-level 'volumes' "
                    f"section does not declare (declared: {sorted(declared)})"
                )


# --------------------------------------------------------------------------------------------------
# Kafka
# --------------------------------------------------------------------------------------------------


def test_kafka_uses_the_apache_kafka_image(compose: dict) -> None:
    image = service(compose, KAFKA).get("image", "")
    assert image.startswith("apache/kafka:"), f"kafka image is {image!r}, expected apache/kafka:<version>"


def test_kafka_runs_kraft_as_combined_broker_and_controller(compose: dict) -> None:
    kenv = kafka_env(compose)
    roles = set(csv(kenv.get("KAFKA_PROCESS_ROLES", "")))
    assert roles == {"broker", "controller"}, (
        f"KAFKA_PROCESS_ROLES is {kenv.get('KAFKA_PROCESS_ROLES')!r}, expected broker,controller (KRaft)"
    )
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kenv, "kafka is KRaft: KAFKA_ZOOKEEPER_CONNECT must not be set"
    assert kenv.get("KAFKA_NODE_ID", "").isdigit(), f"KAFKA_NODE_ID {kenv.get('KAFKA_NODE_ID')!r} is not an id"


def test_kafka_listeners_are_consistent(compose: dict) -> None:
    kenv = kafka_env(compose)
    bound = listeners(env_var(compose, KAFKA, "KAFKA_LISTENERS"))
    advertised = listeners(env_var(compose, KAFKA, "KAFKA_ADVERTISED_LISTENERS"))
    protocols = dict(
        entry.split(":", 1) for entry in csv(env_var(compose, KAFKA, "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"))
    )
    controller_names = csv(env_var(compose, KAFKA, "KAFKA_CONTROLLER_LISTENER_NAMES"))

    for required in ("PLAINTEXT", "CONTROLLER", "EXTERNAL"):
        assert required in bound, f"KAFKA_LISTENERS has no {required} listener: {sorted(bound)}"
    assert "CONTROLLER" in controller_names, (
        f"KAFKA_CONTROLLER_LISTENER_NAMES is {controller_names}, expected it to name CONTROLLER"
    )
    for name in controller_names:
        assert name in bound, f"controller listener {name!r} is not in KAFKA_LISTENERS {sorted(bound)}"
    for name in {*bound, *advertised}:
        assert name in protocols, (
            f"listener {name!r} has no entry in KAFKA_LISTENER_SECURITY_PROTOCOL_MAP {sorted(protocols)}"
        )
    for name, (_, port) in advertised.items():
        assert name in bound, f"advertised listener {name!r} is not bound in KAFKA_LISTENERS"
        assert bound[name][1] == port, f"listener {name!r} binds port {bound[name][1]} but is advertised on port {port}"
    inter_broker = kenv.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT")
    assert inter_broker in advertised, (
        f"inter-broker listener {inter_broker!r} is not advertised ({sorted(advertised)})"
    )
    assert inter_broker not in controller_names, "the inter-broker listener must not be a controller listener"


def test_kafka_quorum_voters_match_node_id_and_controller_listener(compose: dict) -> None:
    node_id = env_var(compose, KAFKA, "KAFKA_NODE_ID")
    voters = csv(env_var(compose, KAFKA, "KAFKA_CONTROLLER_QUORUM_VOTERS"))
    assert len(voters) == 1, f"a single-node stack has exactly one quorum voter, got {voters}"
    match = re.fullmatch(r"(\d+)@(.+):(\d+)", voters[0])
    assert match, f"quorum voter {voters[0]!r} is not id@host:port"
    voter_id, voter_host, voter_port = match[1], match[2], int(match[3])
    assert voter_id == node_id, f"quorum voter id {voter_id} differs from KAFKA_NODE_ID {node_id}"
    names = {KAFKA, service(compose, KAFKA).get("hostname", KAFKA)}
    assert voter_host in names, f"quorum voter host {voter_host!r} is not the kafka service ({sorted(names)})"
    controller_port = listeners(env_var(compose, KAFKA, "KAFKA_LISTENERS")).get("CONTROLLER", ("", -1))[1]
    assert voter_port == controller_port, (
        f"quorum voter port {voter_port} differs from the CONTROLLER listener port {controller_port}"
    )


def test_kafka_replication_factors_fit_a_single_broker(compose: dict) -> None:
    kenv = kafka_env(compose)
    assert "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR" in kenv, (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR must be set: its default (3) leaves consumer groups "
        "without a coordinator on a single broker"
    )
    for key, value in kenv.items():
        if key.endswith(("_REPLICATION_FACTOR", "_MIN_ISR")):
            assert int(value) == 1, f"{key}={value}, but the stack has a single broker"


def test_kafka_healthcheck_queries_the_broker(compose: dict) -> None:
    healthcheck = service(compose, KAFKA).get("healthcheck") or {}
    test = healthcheck.get("test")
    command = " ".join(test) if isinstance(test, list) else str(test or "")
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in command, (
        f"kafka healthcheck {command!r} does not run kafka-broker-api-versions.sh"
    )
    port = listeners(env_var(compose, KAFKA, "KAFKA_LISTENERS"))["PLAINTEXT"][1]
    assert f"--bootstrap-server localhost:{port}" in command, (
        f"kafka healthcheck {command!r} does not query the PLAINTEXT listener on localhost:{port}"
    )


def test_external_listener_is_published_to_the_host(compose: dict) -> None:
    advertised = listeners(env_var(compose, KAFKA, "KAFKA_ADVERTISED_LISTENERS"))
    bound = listeners(env_var(compose, KAFKA, "KAFKA_LISTENERS"))
    assert "EXTERNAL" in advertised, "KAFKA_ADVERTISED_LISTENERS has no EXTERNAL listener for the host"
    host, port = advertised["EXTERNAL"]
    assert host == "localhost", f"EXTERNAL is advertised as {host!r}; host clients connect to localhost"
    container_port = bound["EXTERNAL"][1]
    assert (port, container_port) in published_ports(compose, KAFKA), (
        f"kafka does not publish host port {port} to its EXTERNAL listener port {container_port}"
    )


# --------------------------------------------------------------------------------------------------
# What the producer and the consumers agree on
# --------------------------------------------------------------------------------------------------


def test_bootstrap_servers_are_the_advertised_plaintext_listener(compose: dict) -> None:
    advertised = listeners(env_var(compose, KAFKA, "KAFKA_ADVERTISED_LISTENERS"))
    assert "PLAINTEXT" in advertised, "KAFKA_ADVERTISED_LISTENERS has no PLAINTEXT listener"
    expected = "{}:{}".format(*advertised["PLAINTEXT"])
    assert advertised["PLAINTEXT"][0] in {KAFKA, service(compose, KAFKA).get("hostname", KAFKA)}, (
        f"PLAINTEXT is advertised as {expected}, which the other containers cannot resolve"
    )
    airflow_servers = env_var(compose, AIRFLOW, "AIRFLOW__AIRSTREAM__BOOTSTRAP_SERVERS")
    assert airflow_servers == expected, (
        f"airflow publishes to {airflow_servers} but kafka advertises PLAINTEXT as {expected}"
    )
    for name in DAGSTER_SERVICES:
        servers = env_var(compose, name, "KAFKA_BOOTSTRAP_SERVERS")
        assert servers == expected, f"{name} consumes from {servers} but kafka advertises PLAINTEXT as {expected}"


def test_airflow_and_dagster_use_the_same_topic(compose: dict) -> None:
    topic = env_var(compose, AIRFLOW, "AIRFLOW__AIRSTREAM__TOPIC")
    for name in DAGSTER_SERVICES:
        consumed = env_var(compose, name, "AIRSTREAM_TOPIC")
        assert consumed == topic, f"airflow publishes to topic {topic!r} but {name} reads {consumed!r}"


def test_airflow_and_dagster_use_the_same_instance_name(compose: dict) -> None:
    instance = env_var(compose, AIRFLOW, "AIRFLOW__AIRSTREAM__INSTANCE_NAME")
    for name in DAGSTER_SERVICES:
        expected = env_var(compose, name, "AIRSTREAM_INSTANCE_NAME")
        assert expected == instance, f"airflow stamps events with instance {instance!r} but {name} expects {expected!r}"


def test_clients_start_after_kafka_is_healthy(compose: dict) -> None:
    assert service(compose, KAFKA).get("healthcheck"), "kafka has no healthcheck to wait for"
    for name in CLIENT_SERVICES:
        depends_on = service(compose, name).get("depends_on") or {}
        assert isinstance(depends_on, dict) and KAFKA in depends_on, (
            f"{name} must depend on kafka in the long form (with a condition), got {depends_on!r}"
        )
        condition = (depends_on[KAFKA] or {}).get("condition")
        assert condition == "service_healthy", (
            f"{name} depends on kafka with condition {condition!r}, expected service_healthy"
        )


# --------------------------------------------------------------------------------------------------
# Images and Dockerfiles
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [AIRFLOW, *DAGSTER_SERVICES])
def test_build_dockerfile_exists_with_the_repo_as_context(compose: dict, name: str) -> None:
    context, dockerfile = build_of(compose, name)
    assert context == REPO, f"{name}: build context {context} is not the repository root {REPO}"
    assert dockerfile.is_file(), f"{name}: build.dockerfile {dockerfile} does not exist"


def test_every_referenced_dockerfile_exists(compose: dict) -> None:
    for name, svc in compose["services"].items():
        if svc.get("build"):
            _, dockerfile = build_of(compose, name)
            assert dockerfile.is_file(), f"{name}: build.dockerfile {dockerfile} does not exist"


@pytest.mark.parametrize("name", [AIRFLOW, *DAGSTER_SERVICES])
def test_dockerfile_copies_the_project(compose: dict, pyproject: dict, name: str) -> None:
    dockerfile = dockerfile_of(compose, name)
    copied = {source.rstrip("/") for sources, _, _ in dockerfile.copies() for source in sources}
    packages = [
        pattern.rstrip("*").rstrip(".") for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    for needed in ("pyproject.toml", *packages):
        assert needed in copied, f"{dockerfile.path.name} does not COPY {needed!r} (copies {sorted(copied)})"
    for source in copied:
        if source.startswith("<<") or any(c in source for c in "*?["):
            continue
        assert (dockerfile.context / source).exists(), (
            f"{dockerfile.path.name} copies {source!r}, which does not exist in the build context"
        )


def test_airflow_dockerfile_installs_only_the_airflow_extra(compose: dict) -> None:
    dockerfile = dockerfile_of(compose, AIRFLOW)
    installs = airstream_extras(dockerfile)
    assert installs, f"{dockerfile.path.name} never pip-installs the project with an extra"
    for extras in installs:
        assert extras == {"airflow"}, (
            f"{dockerfile.path.name} installs airstream with extras {sorted(extras)}, expected exactly [airflow]"
        )
    assert "[dagster]" not in dockerfile.text, f"{dockerfile.path.name} mentions the [dagster] extra"


def test_dagster_dockerfile_installs_only_the_dagster_extra(compose: dict) -> None:
    dockerfile = dockerfile_of(compose, DAGSTER_WEBSERVER)
    installs = airstream_extras(dockerfile)
    assert installs, f"{dockerfile.path.name} never pip-installs the project with an extra"
    for extras in installs:
        assert extras == {"dagster"}, (
            f"{dockerfile.path.name} installs airstream with extras {sorted(extras)}, expected exactly [dagster]"
        )
    assert "[airflow]" not in dockerfile.text, f"{dockerfile.path.name} mentions the [airflow] extra"
    assert not re.search(r"\bapache-airflow\b", dockerfile.run_text()), (
        f"{dockerfile.path.name} installs apache-airflow; the Dagster side must not"
    )


def test_airflow_image_is_3_3_2_and_pinned(compose: dict, pyproject: dict) -> None:
    dockerfile = dockerfile_of(compose, AIRFLOW)
    froms = dockerfile.of("FROM")
    assert froms, f"{dockerfile.path.name} has no FROM"
    image = froms[-1].args.split()[0]
    repository, _, tag = image.partition(":")
    assert repository == "apache/airflow", f"{dockerfile.path.name} builds FROM {image!r}, not apache/airflow"
    assert tag.split("-")[0] == "3.3.2", f"{dockerfile.path.name} builds FROM airflow {tag!r}, expected 3.3.2"
    demo_pin = pyproject_pin(pyproject["project"]["optional-dependencies"]["demo"], "apache-airflow")
    assert demo_pin == "3.3.2", f"pyproject's demo extra pins apache-airflow=={demo_pin}, the image is 3.3.2"
    run = dockerfile.run_text()
    assert re.search(r"(--constraint|-c)\s", run), f"{dockerfile.path.name} does not pip install with a constraint"
    assert "apache-airflow==3.3.2" in run, f"{dockerfile.path.name}'s constraint does not pin apache-airflow==3.3.2"


def test_dagster_webserver_matches_the_pinned_dagster(compose: dict, pyproject: dict) -> None:
    dockerfile = dockerfile_of(compose, DAGSTER_WEBSERVER)
    extras = pyproject["project"]["optional-dependencies"]
    run = dockerfile.run_text()
    for package in ("dagster-webserver", "dagster-graphql"):
        version = pyproject_pin(extras["demo"], package)
        assert f"{package}=={version}" in run, (
            f"{dockerfile.path.name} does not install {package}=={version} (the demo extra pins {version})"
        )
        (dagster_range,) = [r for r in extras["dagster"] if r.startswith("dagster")]
        assert Version(version) in SpecifierSet(dagster_range.removeprefix("dagster")), (
            f"the demo's {package}=={version} is outside the dagster extra's {dagster_range}"
        )


# --------------------------------------------------------------------------------------------------
# Airflow
# --------------------------------------------------------------------------------------------------


def test_airflow_settings(compose: dict) -> None:
    expected = {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
    }
    aenv = env(compose, AIRFLOW)
    for key, value in expected.items():
        assert aenv.get(key) == value, f"airflow sets {key}={aenv.get(key)!r}, expected {value!r}"
    assert command_args(compose, AIRFLOW)[-1] == "standalone", "airflow must run `airflow standalone`"
    for key in ("AIRFLOW__AIRSTREAM__SPOOL_DIR", "AIRFLOW__API__BASE_URL"):
        assert aenv.get(key), f"airflow does not set {key}"


def test_airflow_dags_volume_points_at_the_example_dags(compose: dict) -> None:
    dags = [mount for mount in mounts(compose, AIRFLOW) if mount.target.rstrip("/") == AIRFLOW_DAGS_FOLDER]
    assert dags, f"airflow mounts nothing at {AIRFLOW_DAGS_FOLDER}"
    source = dags[0].source
    assert not source.startswith("/"), f"the dags volume source {source!r} must be relative to compose/"
    assert posixpath.normpath(source) == EXPECTED_DAGS_SOURCE, (
        f"the dags volume source is {source!r}, expected {EXPECTED_DAGS_SOURCE!r} (relative to compose/)"
    )
    # Only the path: the folder itself is created separately.
    assert (COMPOSE_DIR / source).resolve() == REPO / "devstack" / "example_dags", (
        f"the dags volume source {source!r} does not resolve to devstack/example_dags in the repository"
    )
    assert dags[0].read_only, "the dags folder should be mounted read-only"
    folder = env(compose, AIRFLOW).get("AIRFLOW__CORE__DAGS_FOLDER", AIRFLOW_DAGS_FOLDER)
    assert folder.rstrip("/") == AIRFLOW_DAGS_FOLDER, f"AIRFLOW__CORE__DAGS_FOLDER={folder} is not the mount"


def test_airflow_passwords_file_is_written_by_the_dockerfile(compose: dict) -> None:
    path = env_var(compose, AIRFLOW, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    dockerfile = dockerfile_of(compose, AIRFLOW)
    match = re.search(r"'(\{[^']*\})'\s*>\s*" + re.escape(path) + r"\b", dockerfile.run_text())
    assert match, f"{dockerfile.path.name} does not write the passwords JSON to {path} (echo '{{...}}' > {path})"
    passwords = json.loads(match[1])
    users = [
        entry.split(":")[0] for entry in csv(env_var(compose, AIRFLOW, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"))
    ]
    for user in users:
        assert passwords.get(user), f"user {user!r} has no password in {path}"


def test_airflow_port_healthcheck_and_base_url(compose: dict) -> None:
    assert (8080, 8080) in published_ports(compose, AIRFLOW), "airflow does not publish port 8080"
    healthcheck = service(compose, AIRFLOW).get("healthcheck") or {}
    test = healthcheck.get("test")
    command = " ".join(test) if isinstance(test, list) else str(test or "")
    assert "curl" in command and "http://localhost:8080/api/v2/monitor/health" in command, (
        f"airflow healthcheck {command!r} does not curl http://localhost:8080/api/v2/monitor/health"
    )
    base_url = env_var(compose, AIRFLOW, "AIRFLOW__API__BASE_URL")
    assert base_url.rstrip("/") == "http://localhost:8080", f"AIRFLOW__API__BASE_URL is {base_url!r}"
    for name in DAGSTER_SERVICES:
        link = env_var(compose, name, "AIRFLOW_WEBSERVER_URL")
        assert link.rstrip("/") == base_url.rstrip("/"), (
            f"{name} links to Airflow at {link!r} but Airflow's base URL is {base_url!r}"
        )


# --------------------------------------------------------------------------------------------------
# Dagster
# --------------------------------------------------------------------------------------------------


def test_dagster_webserver_and_daemon_share_image_home_and_workspace(compose: dict) -> None:
    web, daemon = DAGSTER_SERVICES
    assert build_of(compose, web) == build_of(compose, daemon), f"{web} and {daemon} build different images"
    home = env_var(compose, web, "DAGSTER_HOME")
    assert env_var(compose, daemon, "DAGSTER_HOME") == home, f"{web} and {daemon} have different DAGSTER_HOME"

    def home_volumes(name: str) -> set[tuple[str, str]]:
        return {
            (mount.source, mount.target)
            for mount in mounts(compose, name)
            if is_named_volume(mount.source) and (mount.target == home or mount.target.startswith(home + "/"))
        }

    shared = home_volumes(web) & home_volumes(daemon)
    assert shared, (
        f"{web} and {daemon} do not mount the same named volume at or under DAGSTER_HOME={home} "
        f"({sorted(home_volumes(web))} vs {sorted(home_volumes(daemon))})"
    )

    workspaces = {name: option_value(command_args(compose, name), "-w", "--workspace") for name in DAGSTER_SERVICES}
    assert all(workspaces.values()), f"both dagster services must load a workspace with -w: {workspaces}"
    assert len(set(workspaces.values())) == 1, f"{web} and {daemon} load different workspaces: {workspaces}"
    assert command_args(compose, daemon)[:2] == ["dagster-daemon", "run"], f"{daemon} must run `dagster-daemon run`"


def test_dagster_instance_storage_is_on_the_shared_volume(compose: dict) -> None:
    home = env_var(compose, DAGSTER_WEBSERVER, "DAGSTER_HOME")
    dockerfile = dockerfile_of(compose, DAGSTER_WEBSERVER)
    targets = {mount.target for mount in mounts(compose, DAGSTER_WEBSERVER) if is_named_volume(mount.source)}
    instance_yaml = dockerfile.heredoc_at(f"{home}/dagster.yaml")
    if instance_yaml is None:
        repo_file = dockerfile.repo_file_at(f"{home}/dagster.yaml")
        assert repo_file is not None and repo_file.is_file(), (
            f"{dockerfile.path.name} writes no {home}/dagster.yaml (COPY <<EOT ... or COPY of a file)"
        )
        instance_yaml = repo_file.read_text()
    instance = yaml.safe_load(instance_yaml) or {}
    base_dir = ((instance.get("storage") or {}).get("sqlite") or {}).get("base_dir")
    if base_dir is None:
        assert home in targets, f"dagster.yaml keeps the default storage in {home}, which is not a volume"
        return
    assert any(base_dir == target or base_dir.startswith(target + "/") for target in targets), (
        f"dagster.yaml stores SQLite in {base_dir}, which is on none of the shared volumes {sorted(targets)}"
    )


def test_dagster_webserver_is_published_on_3000(compose: dict) -> None:
    args = command_args(compose, DAGSTER_WEBSERVER)
    assert args[0] == "dagster-webserver", f"dagster-webserver runs {args[0]!r}"
    assert option_value(args, "-h", "--host") == "0.0.0.0", "dagster-webserver must listen on 0.0.0.0"
    port = int(option_value(args, "-p", "--port") or 3000)
    assert (3000, port) in published_ports(compose, DAGSTER_WEBSERVER), (
        f"dagster-webserver listens on {port} but host port 3000 is not published to it"
    )


def test_workspace_loads_a_file_that_exists(compose: dict) -> None:
    dockerfile = dockerfile_of(compose, DAGSTER_WEBSERVER)
    workspace_path = option_value(command_args(compose, DAGSTER_WEBSERVER), "-w", "--workspace")
    assert workspace_path, "dagster-webserver does not load a workspace with -w"
    workspace_file = dockerfile.repo_file_at(workspace_path)
    assert workspace_file is not None and workspace_file.is_file(), (
        f"{dockerfile.path.name} does not COPY an existing file to {workspace_path}"
    )
    workspace = yaml.safe_load(workspace_file.read_text()) or {}
    locations = workspace.get("load_from") or []
    assert locations, f"{workspace_file.name} has no load_from entries"
    for location in locations:
        python_file = location.get("python_file")
        assert python_file, f"{workspace_file.name}: expected python_file code locations, got {location!r}"
        relative = python_file if isinstance(python_file, str) else python_file["relative_path"]
        container_path = posixpath.normpath(posixpath.join(posixpath.dirname(workspace_path), relative))
        source = dockerfile.repo_file_at(container_path)
        assert source is not None, f"{workspace_file.name} loads {container_path}, which no COPY puts there"
        assert source.is_file(), f"{workspace_file.name} loads {container_path}, copied from missing {source}"
        assert source.resolve() == DEFINITIONS_FILE, (
            f"{workspace_file.name} loads {source}, expected the stack's {DEFINITIONS_FILE}"
        )


# --------------------------------------------------------------------------------------------------
# definitions.py (parsed, never imported: dagster_consumer is not installed here)
# --------------------------------------------------------------------------------------------------


def environ_reads(tree: ast.AST) -> dict[str, str | None]:
    """Environment variables a module reads: name -> default (None when required or no default)."""

    def is_environ(node: ast.AST) -> bool:
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "environ"
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
        )

    reads: dict[str, str | None] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and is_environ(node.value):
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                reads[node.slice.value] = None
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            is_get = isinstance(func, ast.Attribute) and func.attr == "get" and is_environ(func.value)
            is_getenv = (
                isinstance(func, ast.Attribute)
                and func.attr == "getenv"
                and isinstance(func.value, ast.Name)
                and func.value.id == "os"
            )
            if (is_get or is_getenv) and isinstance(node.args[0].value, str):
                default = node.args[1] if len(node.args) > 1 else None
                reads[node.args[0].value] = (
                    default.value if isinstance(default, ast.Constant) and isinstance(default.value, str) else None
                )
    return reads


@pytest.fixture(scope="module")
def definitions_tree() -> ast.Module:
    assert DEFINITIONS_FILE.is_file(), f"{DEFINITIONS_FILE} does not exist"
    return ast.parse(DEFINITIONS_FILE.read_text(), filename=str(DEFINITIONS_FILE))


def test_definitions_reads_kafka_bootstrap_servers(definitions_tree: ast.Module) -> None:
    reads = environ_reads(definitions_tree)
    assert "KAFKA_BOOTSTRAP_SERVERS" in reads, (
        f"{DEFINITIONS_FILE.name} does not read KAFKA_BOOTSTRAP_SERVERS from the environment (reads {sorted(reads)})"
    )


def test_definitions_environment_is_provided_by_both_dagster_services(
    compose: dict, definitions_tree: ast.Module
) -> None:
    reads = environ_reads(definitions_tree)
    for name in DAGSTER_SERVICES:
        provided = env(compose, name)
        for variable, default in reads.items():
            if default is None:
                assert variable in provided, f"{DEFINITIONS_FILE.name} needs {variable}, which {name} does not set"


def test_definitions_does_not_import_airflow(definitions_tree: ast.Module) -> None:
    imported = set()
    for node in ast.walk(definitions_tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    roots = {name.split(".")[0] for name in imported}
    assert "airflow" not in roots, f"{DEFINITIONS_FILE.name} imports airflow; the Dagster image has none"
    assert "airstream.airflow_listener" not in imported, f"{DEFINITIONS_FILE.name} imports the Airflow side"
    assert "airstream.dagster_consumer" in imported, f"{DEFINITIONS_FILE.name} does not import the consumer"
    assert "defs" in {
        target.id
        for node in definitions_tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }, f"{DEFINITIONS_FILE.name} defines no module-level `defs` for Dagster to load"
