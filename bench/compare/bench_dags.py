"""The benchmark's DAGs, parsed by Airflow 2.11 and 3.3 alike (copied into a DAGs folder per chunk).

The harness writes copies of this file as ``bench_dags_<chunk>.py`` beside a ``bench_dag_count.txt``
holding how many DAGs there are; each copy defines its chunk of 100 ``bench_NNNN`` DAGs (one task,
``work``, that succeeds), and chunk 0 also ``bench_failing`` (``extract`` succeeds, ``load`` fails),
whose runs fail: the terminal states Airlift never records.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

try:  # Airflow 3
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.10+
    from airflow import DAG
    from airflow.operators.python import PythonOperator  # type: ignore[no-redef]

CHUNK = 0  # the copies set their own
CHUNK_SIZE = 100
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
_count_file = Path(__file__).with_name("bench_dag_count.txt")
COUNT = int(_count_file.read_text()) if _count_file.exists() else 10


def succeed() -> None:
    """The work of every bench task: nothing, so the task's time is Airflow's and the listener's."""


def fail() -> None:
    raise RuntimeError("bench_failing.load fails on purpose")


for number in range(CHUNK * CHUNK_SIZE, min(COUNT, (CHUNK + 1) * CHUNK_SIZE)):
    with DAG(f"bench_{number:04d}", schedule=None, start_date=START, catchup=False, tags=["bench"]) as dag:
        PythonOperator(task_id="work", python_callable=succeed)
    globals()[dag.dag_id] = dag

if CHUNK == 0:
    with DAG("bench_failing", schedule=None, start_date=START, catchup=False, tags=["bench"]) as failing:
        extract = PythonOperator(task_id="extract", python_callable=succeed)
        load = PythonOperator(task_id="load", python_callable=fail, retries=0)
        extract >> load
