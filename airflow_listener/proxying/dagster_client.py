"""A small client for the Dagster webserver's GraphQL API, used by the proxy operators.

It asks for exactly what a proxy needs: where the proxy job of a task (or DAG) lives, the
partitions of that job's assets, launching the job, a run's status, the retry Dagster launched for
a failed run, and terminating a run. Only ``requests``; no Dagster import on the Airflow side.

Example::

    client = DagsterGraphQLClient("http://dagster:3000", requests.Session())
    job = client.find_job("airstream_proxy__prod__etl__load")
    run_id = client.launch_run(job, tags={"airstream/dag_id": "etl"})
    client.run_status(run_id)   # RunStatus(status="STARTED", tags={...})
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests

FINISHED_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
PARENT_RUN_TAG = "dagster/parent_run_id"
ROOT_RUN_TAG = "dagster/root_run_id"
WILL_RETRY_TAG = "dagster/will_retry"
PARTITION_TAG = "dagster/partition"


class DagsterProxyError(RuntimeError):
    """Dagster refused or could not do what a proxy task asked (the message says what and why)."""


class DagsterUnreachable(DagsterProxyError):
    """The Dagster webserver did not answer (connection refused, timeout, 5xx)."""


@dataclass(frozen=True)
class ProxyJob:
    """A proxy job and where it lives, with the partitions of the assets it materializes."""

    name: str
    repository_name: str
    location_name: str
    asset_keys: tuple[tuple[str, ...], ...] = ()
    partition_formats: tuple[str | None, ...] = ()  # a time-window format per partitioned asset, None otherwise
    partition_types: tuple[str, ...] = ()

    @property
    def selector(self) -> dict[str, str]:
        return {
            "repositoryLocationName": self.location_name,
            "repositoryName": self.repository_name,
            "jobName": self.name,
        }


@dataclass(frozen=True)
class RunStatus:
    """A Dagster run's status (``QUEUED``, ``STARTED``, ``SUCCESS``, ``FAILURE``…) and its tags."""

    run_id: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


_FIND_JOB = """
query AirstreamRepositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
  }
}
"""

_LOCATION_ERRORS = """
query AirstreamLocations {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
    }
  }
}
"""

_JOB_ASSETS = """
query AirstreamJobAssets($selector: PipelineSelector!) {
  assetNodes(pipeline: $selector) {
    assetKey { path }
    isPartitioned
    partitionDefinition { type fmt }
  }
}
"""

_LAUNCH = """
mutation AirstreamLaunch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""

_RUN = """
query AirstreamRun($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status tags { key value } }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""

_CHILD_RUNS = """
query AirstreamChildRuns($filter: RunsFilter!) {
  runsOrError(filter: $filter, limit: 5) {
    __typename
    ... on Runs { results { runId status tags { key value } } }
    ... on PythonError { message }
  }
}
"""

_TERMINATE = """
mutation AirstreamTerminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
    ... on Error { message }
  }
}
"""


class DagsterGraphQLClient:
    """Calls to ``<url>/graphql`` through ``session`` (which carries any auth headers).

    Transient failures (connection errors, timeouts, HTTP 5xx) are retried ``attempts`` times
    with a growing pause; anything else raises :class:`DagsterProxyError` at once.
    """

    def __init__(
        self, url: str, session: requests.Session, *, timeout: float = 30.0, attempts: int = 3, backoff: float = 1.0
    ) -> None:
        self.url = url.rstrip("/")
        self.session = session
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff

    def run_url(self, run_id: str) -> str:
        """The Dagster UI page of a run."""
        return f"{self.url}/runs/{run_id}"

    def find_job(self, job_name: str) -> ProxyJob:
        """The proxy job named ``job_name`` and its assets; raises if no code location defines it."""
        found = self._query(_FIND_JOB)["repositoriesOrError"]
        if found["__typename"] != "RepositoryConnection":
            raise DagsterProxyError(f"Dagster at {self.url} could not list its code locations: {found.get('message')}")
        homes = [
            (repo["location"]["name"], repo["name"])
            for repo in found["nodes"]
            if any(job["name"] == job_name for job in repo["jobs"])
        ]
        if not homes:
            problems = self._location_problems()
            raise DagsterProxyError(
                f"no Dagster code location at {self.url} defines the job {job_name!r}: map executable @asset "
                f"definitions to this task (assets_with_task_mappings / assets_with_dag_mappings) in "
                f"build_defs_from_airflow_instance, whose AirflowInstance(name=...) must be this Airflow's "
                f"[airstream] instance_name (the job's second part), then reload the code location"
                + (f". Code locations not loaded: {problems}" if problems else "")
            )
        if len(homes) > 1:
            raise DagsterProxyError(f"the job {job_name!r} is defined in several code locations: {homes}; keep one")
        location, repository = homes[0]
        selector = {"repositoryLocationName": location, "repositoryName": repository, "pipelineName": job_name}
        nodes = self._query(_JOB_ASSETS, {"selector": selector})["assetNodes"]
        return ProxyJob(
            name=job_name,
            repository_name=repository,
            location_name=location,
            asset_keys=tuple(tuple(node["assetKey"]["path"]) for node in nodes),
            partition_formats=tuple(
                (node.get("partitionDefinition") or {}).get("fmt") for node in nodes if node["isPartitioned"]
            ),
            partition_types=tuple(
                str((node.get("partitionDefinition") or {}).get("type")) for node in nodes if node["isPartitioned"]
            ),
        )

    def _location_problems(self) -> str:
        """Code locations that are loading or failed to load, with their errors (for messages)."""
        try:
            workspace = self._query(_LOCATION_ERRORS)["workspaceOrError"]
        except DagsterProxyError:
            return ""
        problems = []
        for entry in workspace.get("locationEntries") or []:
            loaded = entry.get("locationOrLoadError") or {}
            if entry.get("loadStatus") != "LOADED":
                problems.append(f"{entry['name']} is {str(entry.get('loadStatus')).lower()}")
            elif loaded.get("__typename") == "PythonError":
                problems.append(f"{entry['name']} failed: {str(loaded.get('message')).strip()[:500]}")
        return "; ".join(problems)

    def launch_run(self, job: ProxyJob, *, tags: dict[str, str]) -> str:
        """Launch ``job`` with ``tags`` (a ``dagster/partition`` tag picks the partition); returns the run id."""
        params = {
            "selector": job.selector,
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": key, "value": value} for key, value in tags.items()]},
        }
        result = self._query(_LAUNCH, {"executionParams": params})["launchRun"]
        if result["__typename"] == "LaunchRunSuccess":
            return str(result["run"]["runId"])
        detail = result.get("message") or "; ".join(error["message"] for error in result.get("errors") or [])
        raise DagsterProxyError(f"Dagster refused to launch {job.name}: {result['__typename']}: {detail}")

    def run_status(self, run_id: str) -> RunStatus:
        result = self._query(_RUN, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise DagsterProxyError(f"Dagster run {run_id}: {result['__typename']}: {result.get('message')}")
        return _run_status(result)

    def retry_of(self, run_id: str) -> RunStatus | None:
        """The run Dagster launched to retry ``run_id`` (its ``dagster/parent_run_id``), if any yet."""
        run_filter = {"tags": [{"key": PARENT_RUN_TAG, "value": run_id}]}
        result = self._query(_CHILD_RUNS, {"filter": run_filter})["runsOrError"]
        if result["__typename"] != "Runs":
            raise DagsterProxyError(f"Dagster could not list the retries of run {run_id}: {result.get('message')}")
        runs = [_run_status(run) for run in result["results"]]
        return runs[0] if runs else None

    def terminate_run(self, run_id: str) -> None:
        result = self._query(_TERMINATE, {"runId": run_id})["terminateRun"]
        if result["__typename"] != "TerminateRunSuccess":
            raise DagsterProxyError(f"Dagster did not terminate run {run_id}: {result.get('message')}")

    def _query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        endpoint = f"{self.url}/graphql"
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.session.post(
                    endpoint, json={"query": query, "variables": variables or {}}, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as error:
                failure: DagsterProxyError = DagsterUnreachable(f"Dagster at {endpoint} did not answer: {error}")
            else:
                if response.status_code >= 500:
                    failure = DagsterUnreachable(f"Dagster at {endpoint} answered HTTP {response.status_code}")
                elif response.status_code in (401, 403):
                    raise DagsterProxyError(
                        f"Dagster at {endpoint} refused the credentials (HTTP {response.status_code}); check the "
                        f"headers get_dagster_session adds"
                    )
                elif response.status_code != 200:
                    raise DagsterProxyError(
                        f"Dagster at {endpoint} answered HTTP {response.status_code}: {response.text[:500]}"
                    )
                else:
                    body = response.json()
                    if body.get("errors"):
                        messages = "; ".join(str(error.get("message")) for error in body["errors"])
                        raise DagsterProxyError(f"Dagster's GraphQL API at {endpoint} reported: {messages}")
                    data: dict[str, Any] = body["data"]
                    return data
            if attempt == self.attempts:
                raise failure
            time.sleep(self.backoff * attempt)
        raise AssertionError("unreachable")


def _run_status(run: dict[str, Any]) -> RunStatus:
    return RunStatus(
        run_id=str(run["runId"]),
        status=str(run["status"]),
        tags={tag["key"]: tag["value"] for tag in run.get("tags") or []},
    )
