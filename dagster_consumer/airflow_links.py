"""Links from Dagster asset events to the DAG run or task instance in the Airflow UI.

The two Airflow UIs address runs differently. Airflow 3 (React UI) has a path per run and task
instance; Airflow 2 (2.7 to 2.11) shows both in the DAG's grid view, chosen by query parameters,
the form Airflow 2.11's own ``TaskInstance.log_url`` uses. The event's ``airflow_version`` picks
the scheme; events without one (written before schema 1.1) get the Airflow 3 form.
"""

from __future__ import annotations

from datetime import timezone
from urllib.parse import quote, urlencode

from airstream.schemas import DagRunEvent, Event


def airflow_ui_url(webserver_url: str, event: Event) -> str:
    """Link to the DAG run, or to the task instance, in the Airflow UI of the event's version.

    Examples::

        # Airflow 3, or no airflow_version on the event:
        http://af:8080/dags/etl/runs/scheduled__2025-01-02T00%3A00%3A00%2B00%3A00/tasks/load/mapped/2
        # Airflow 2 (airflow_version "2.11.2"):
        http://af:8080/dags/etl/grid?dag_run_id=scheduled__2025-01-02T00%3A00%3A00%2B00%3A00&task_id=load&map_index=2&base_date=2025-01-02T00%3A00%3A00%2B0000
    """
    if is_airflow_2(event.airflow_version):
        return _airflow_2_url(webserver_url, event)
    return _airflow_3_url(webserver_url, event)


def is_airflow_2(airflow_version: str | None) -> bool:
    """Whether an event's ``airflow_version`` is an Airflow 2 release (``"2.11.2"``)."""
    return airflow_version is not None and airflow_version.split(".", 1)[0].strip() == "2"


def _airflow_3_url(webserver_url: str, event: Event) -> str:
    url = f"{webserver_url}/dags/{quote(event.dag_id, safe='')}/runs/{quote(event.run_id, safe='')}"
    if not isinstance(event, DagRunEvent):
        url += f"/tasks/{quote(event.task_id, safe='')}"
        if event.map_index >= 0:
            url += f"/mapped/{event.map_index}"
    return url


def _airflow_2_url(webserver_url: str, event: Event) -> str:
    query: list[tuple[str, str]] = [("dag_run_id", event.run_id)]
    if not isinstance(event, DagRunEvent):
        query.append(("task_id", event.task_id))
        if event.map_index >= 0:
            query.append(("map_index", str(event.map_index)))
    if event.logical_date is not None:
        # The grid shows runs up to base_date: without it an old run may be off the page.
        logical_date = event.logical_date
        if logical_date.tzinfo is None:
            logical_date = logical_date.replace(tzinfo=timezone.utc)
        query.append(("base_date", logical_date.strftime("%Y-%m-%dT%H:%M:%S%z")))
    return f"{webserver_url}/dags/{quote(event.dag_id, safe='')}/grid?{urlencode(query, quote_via=quote)}"


def airflow_dag_url(webserver_url: str, dag_id: str, airflow_version: str | None) -> str:
    """Link to a DAG in the Airflow UI of ``airflow_version`` (Airflow 3 when ``None``).

    Examples::

        airflow_dag_url("http://af:8080", "etl", "3.3.2")    # http://af:8080/dags/etl
        airflow_dag_url("http://af:8080", "etl", "2.11.2")   # http://af:8080/dags/etl/grid
    """
    url = f"{webserver_url.rstrip('/')}/dags/{quote(dag_id, safe='')}"
    return f"{url}/grid" if is_airflow_2(airflow_version) else url
