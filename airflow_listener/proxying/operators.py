"""The proxy operators: an Airflow task that runs its work in Dagster.

A proxied task keeps its id, dependencies, retries, pool, queue and timeouts; when it runs it
launches the Dagster job that materializes the assets mapped to it (see
:func:`airstream.schemas.proxying.proxy_job_name`), logs a link to the run, follows Dagster's own
retries of the run, and fails (so Airflow's retries apply) when the run fails. Killing the task
terminates the Dagster run.

Subclass :class:`BaseProxyTaskToDagsterOperator` or :class:`BaseProxyDAGToDagsterOperator` and
implement :meth:`~BaseDagsterProxyOperator.get_dagster_session` and
:meth:`~BaseDagsterProxyOperator.get_dagster_url` for your deployment's auth; the default
operators read the URL from the Airflow Variable ``dagster_url`` (or the environment variable
``AIRSTREAM_DAGSTER_URL``) and send no credentials.

Example (a deployment behind an API-key proxy)::

    class ApiKeyProxy(BaseProxyTaskToDagsterOperator):
        def get_dagster_session(self, context):
            session = requests.Session()
            session.headers["X-Api-Key"] = Variable.get("dagster_api_key")
            return session

        def get_dagster_url(self, context):
            return "https://dagster.internal.example.com"
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from typing import Any, ClassVar

import requests

from airstream.airflow_listener.proxying.compat import BaseOperator, airstream_instance_name, get_variable
from airstream.airflow_listener.proxying.dagster_client import (
    PARTITION_TAG,
    WILL_RETRY_TAG,
    DagsterGraphQLClient,
    DagsterProxyError,
    DagsterUnreachable,
    ProxyJob,
    RunStatus,
)
from airstream.schemas.proxying import DAG_PROXY_TASK_ID, PROXIED_DAG_OPERATOR, PROXIED_TASK_OPERATOR, proxy_job_name

DAGSTER_URL_VARIABLE = "dagster_url"
DAGSTER_URL_ENV = "AIRSTREAM_DAGSTER_URL"

# What a proxy keeps of the task it replaces: scheduling, resource settings and alerting, never the work.
COPIED_TASK_ATTRIBUTES = (
    "owner",
    "email",
    "email_on_retry",
    "email_on_failure",
    "retries",
    "retry_delay",
    "retry_exponential_backoff",
    "max_retry_delay",
    "execution_timeout",
    "depends_on_past",
    "wait_for_downstream",
    "priority_weight",
    "queue",
    "pool",
    "pool_slots",
    "trigger_rule",
    "max_active_tis_per_dag",
    "max_active_tis_per_dagrun",
    "start_date",
    "end_date",
    "doc_md",
    "on_failure_callback",
    "on_success_callback",
    "on_retry_callback",
)


class BaseDagsterProxyOperator(BaseOperator):
    """Launches one Dagster job and waits for it; the parts common to task- and DAG-level proxies.

    Args:
        dagster_job_name: the Dagster job to launch.
        dagster_url: the Dagster webserver's URL; default: :meth:`get_dagster_url`.
        poll_interval: seconds between two status requests.
        max_wait: seconds to wait for the run (and its retries) before failing; ``None`` waits
            as long as Airflow's ``execution_timeout`` allows.
        retry_grace: seconds to wait for the retry Dagster launches for a failed run tagged
            ``dagster/will_retry=true``.
    """

    proxy_marker: ClassVar[str] = PROXIED_TASK_OPERATOR
    # The name Dagster knows this Airflow by (``AirflowInstance(name=...)``), which names the proxy
    # jobs; ``None``: the listener's ``[airstream] instance_name``. Set it in a subclass for a
    # Dagster that names this Airflow otherwise (e.g. one that observes it over REST only).
    airflow_instance_name: ClassVar[str | None] = None
    ui_color = "#4f43dd"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        dagster_job_name: str,
        dagster_url: str | None = None,
        poll_interval: float = 2.0,
        max_wait: float | None = 24 * 3600,
        retry_grace: float = 60.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dagster_job_name = dagster_job_name
        self.dagster_url = dagster_url
        self.poll_interval = poll_interval
        self.max_wait = max_wait
        self.retry_grace = retry_grace
        # Airflow stores this on the task-instance row; the task type below is what REST v1 returns.
        self.custom_operator_name = self.proxy_marker
        self._dagster_run_id: str | None = None
        self._client: DagsterGraphQLClient | None = None

    @property
    def task_type(self) -> str:
        """The proxy marker, whatever the subclass's name: it is how the Dagster side recognises a proxy."""
        return self.proxy_marker

    @property
    def _task_type(self) -> str:
        # Airflow 2 serializes the task type from `_task_type` (Airflow 3 from `task_type`); the task
        # instance's `operator` column, which REST v1 returns, comes from the serialized task type.
        return self.proxy_marker

    @classmethod
    def instance_name(cls) -> str:
        """The Airflow instance name the proxy jobs are named after: :attr:`airflow_instance_name`,
        else ``[airstream] instance_name`` (default ``airflow``)."""
        return cls.airflow_instance_name or airstream_instance_name()

    def get_dagster_session(self, context: Any) -> requests.Session:
        """The HTTP session for Dagster's GraphQL API; override to add auth headers."""
        return requests.Session()

    def get_dagster_url(self, context: Any) -> str:
        """The Dagster webserver's URL: the ``dagster_url`` argument, else the Airflow Variable
        ``dagster_url``, else the environment variable ``AIRSTREAM_DAGSTER_URL``."""
        url = self.dagster_url or get_variable(DAGSTER_URL_VARIABLE) or os.environ.get(DAGSTER_URL_ENV)
        if not url:
            raise DagsterProxyError(
                f"no Dagster URL for {self.task_id}: set the Airflow Variable {DAGSTER_URL_VARIABLE!r}, the "
                f"environment variable {DAGSTER_URL_ENV}, or override get_dagster_url"
            )
        return url

    def run_tags(self, context: Any) -> dict[str, str]:
        """Tags of the Dagster run, naming the Airflow task instance it runs for."""
        ti = context["ti"]
        return {
            "airstream/dag_id": str(ti.dag_id),
            "airstream/task_id": str(ti.task_id),
            "airstream/run_id": str(ti.run_id),
            "airstream/try_number": str(ti.try_number),
        }

    def execute(self, context: Any) -> None:
        client = DagsterGraphQLClient(self.get_dagster_url(context), self.get_dagster_session(context))
        self._client = client
        job = client.find_job(self.dagster_job_name)
        tags = self.run_tags(context)
        partition = partition_key(job, context.get("logical_date"))
        if partition is not None:
            tags[PARTITION_TAG] = partition
        run_id = client.launch_run(job, tags=tags)
        self._dagster_run_id = run_id
        self.log.info(
            "Launched Dagster run %s of %s (partition %s): %s", run_id, job.name, partition, client.run_url(run_id)
        )
        final = self._wait(client, run_id)
        if final.status != "SUCCESS":
            raise DagsterProxyError(
                f"Dagster run {final.run_id} of {job.name} ended {final.status}: {client.run_url(final.run_id)}"
            )
        self.log.info("Dagster run %s succeeded: %s", final.run_id, client.run_url(final.run_id))

    def on_kill(self) -> None:
        run_id, client = self._dagster_run_id, self._client
        if run_id is None or client is None:
            return
        self.log.info("Terminating Dagster run %s (the Airflow task was killed)", run_id)
        try:
            client.terminate_run(run_id)
        except Exception:
            self.log.exception("Could not terminate Dagster run %s: %s", run_id, client.run_url(run_id))

    def _wait(self, client: DagsterGraphQLClient, run_id: str) -> RunStatus:
        deadline = None if self.max_wait is None else time.monotonic() + self.max_wait
        while True:
            try:
                status: RunStatus | None = client.run_status(run_id)
            except DagsterUnreachable as error:
                # The run goes on while Dagster's webserver is away: keep waiting, within max_wait,
                # rather than fail the task (its retry would launch the assets a second time).
                self.log.warning("Dagster did not answer about run %s; still waiting: %s", run_id, error)
                status = None
            if status is not None and status.finished:
                retry = self._retry(client, status) if status.status == "FAILURE" else None
                if retry is None:
                    return status
                self.log.info(
                    "Dagster run %s failed; following its retry %s: %s",
                    run_id,
                    retry.run_id,
                    client.run_url(retry.run_id),
                )
                run_id = self._dagster_run_id = retry.run_id
                continue
            if deadline is not None and time.monotonic() > deadline:
                raise DagsterProxyError(
                    f"Dagster run {run_id} did not finish within {self.max_wait:.0f} s "
                    f"(status {status.status if status else 'unknown: Dagster did not answer'}): "
                    f"{client.run_url(run_id)}"
                )
            time.sleep(self.poll_interval)

    def _retry(self, client: DagsterGraphQLClient, failed: RunStatus) -> RunStatus | None:
        """The retry Dagster launches for ``failed``, when the run says it will retry."""
        if WILL_RETRY_TAG not in failed.tags:
            # Dagster stores a run's failure, then tags it `dagster/will_retry` (when run retries are
            # enabled): a poll between the two sees no tag yet. Look once more before deciding.
            time.sleep(self.poll_interval)
            try:
                failed = client.run_status(failed.run_id)
            except DagsterUnreachable as error:
                self.log.warning("Dagster did not answer about run %s: %s", failed.run_id, error)
        if failed.tags.get(WILL_RETRY_TAG, "").lower() != "true":
            return None
        deadline = time.monotonic() + self.retry_grace
        while time.monotonic() < deadline:
            retry = client.retry_of(failed.run_id)
            if retry is not None:
                return retry
            time.sleep(self.poll_interval)
        self.log.warning(
            "Dagster said run %s will retry, but no retry appeared within %.0f s", failed.run_id, self.retry_grace
        )
        return None


class BaseProxyTaskToDagsterOperator(BaseDagsterProxyOperator):
    """The base class of task-level proxies: runs the Dagster assets mapped to one Airflow task.

    Subclasses implement ``get_dagster_session`` / ``get_dagster_url`` as needed; pass
    ``MyProxy.build_from_task`` (or the class) to ``proxying_to_dagster``.
    """

    proxy_marker = PROXIED_TASK_OPERATOR

    @classmethod
    def build_from_task(cls, task: Any) -> BaseOperator:
        """The proxy that replaces ``task``: the same id and scheduling settings, no DAG attached.

        Example::

            proxy = DefaultProxyTaskToDagsterOperator.build_from_task(dag.get_task("load"))
        """
        job = proxy_job_name(cls.instance_name(), task.dag_id, task.task_id)
        return cls(dagster_job_name=job, **copied_task_arguments(task))


class BaseProxyDAGToDagsterOperator(BaseDagsterProxyOperator):
    """The base class of DAG-level proxies: one task that runs the Dagster assets mapped to a DAG."""

    proxy_marker = PROXIED_DAG_OPERATOR

    @classmethod
    def build_from_dag(cls, dag: Any) -> BaseOperator:
        """The one task that replaces every task of ``dag``, with id ``run_dag_in_dagster``.

        Example::

            proxy = DefaultProxyDAGToDagsterOperator.build_from_dag(dag)
        """
        return cls(task_id=DAG_PROXY_TASK_ID, dagster_job_name=proxy_job_name(cls.instance_name(), dag.dag_id))


class DefaultProxyTaskToDagsterOperator(BaseProxyTaskToDagsterOperator):
    """The task-level proxy ``proxying_to_dagster`` uses unless told otherwise (no credentials)."""


class DefaultProxyDAGToDagsterOperator(BaseProxyDAGToDagsterOperator):
    """The DAG-level proxy ``proxying_to_dagster`` uses unless told otherwise (no credentials)."""


def copied_task_arguments(task: Any) -> dict[str, Any]:
    """The constructor arguments that keep ``task``'s id and scheduling settings in its proxy."""
    arguments: dict[str, Any] = {"task_id": task.task_id}
    for name in COPIED_TASK_ATTRIBUTES:
        value = getattr(task, name, None)
        if value is not None:
            arguments[name] = value
    return arguments


def partition_key(job: ProxyJob, logical_date: Any) -> str | None:
    """The partition to launch: the logical date (UTC) in the time-window format of the job's
    partitioned assets; ``None`` when none is partitioned.

    The logical date is the start of the run's data interval, so for a DAG scheduled like the
    partitions (a daily DAG, daily partitions) it is the start of the partition's window.

    Raises :class:`DagsterProxyError` for partitions airstream cannot choose from a date (static,
    dynamic, multi-dimensional), assets of one job with different formats, or a run without a
    logical date.
    """
    if not job.partition_formats:
        return None
    formats = set(job.partition_formats)
    if len(formats) != 1 or None in formats or set(job.partition_types) != {"TIME_WINDOW"}:
        raise DagsterProxyError(
            f"the assets of {job.name} must share one time-window partitions definition to be proxied "
            f"(found types {sorted(set(job.partition_types))}, formats {sorted(map(str, formats))})"
        )
    if not isinstance(logical_date, datetime):
        raise DagsterProxyError(
            f"the assets of {job.name} are partitioned, but this Airflow run has no logical date: "
            f"trigger it with one (Airflow 3 manual runs have none unless given)"
        )
    when = logical_date if logical_date.tzinfo else logical_date.replace(tzinfo=timezone.utc)
    (fmt,) = formats
    return when.astimezone(timezone.utc).strftime(str(fmt))


__all__ = [
    "BaseDagsterProxyOperator",
    "BaseProxyDAGToDagsterOperator",
    "BaseProxyTaskToDagsterOperator",
    "DefaultProxyDAGToDagsterOperator",
    "DefaultProxyTaskToDagsterOperator",
    "copied_task_arguments",
    "partition_key",
]
