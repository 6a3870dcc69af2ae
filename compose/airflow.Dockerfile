# syntax=docker/dockerfile:1
# Airflow with the airstream listener plugin (the `airflow` extra: listener + Kafka client, no Dagster).
# Build context is the repository root: docker compose -f compose/docker-compose.yml build airflow
FROM apache/airflow:3.3.2-python3.11

# pip builds the project in-tree (egg-info, build/), so the source directory must be writable by airflow.
USER root
RUN mkdir -p /opt/airstream && chown airflow:0 /opt/airstream
USER airflow

# Only what the package ships (pyproject [tool.setuptools.packages.find]); README* may be absent.
# airstream/ links to the three package folders, which must come along.
COPY --chown=airflow:0 pyproject.toml LICENSE README* /opt/airstream/
COPY --chown=airflow:0 airstream /opt/airstream/airstream
COPY --chown=airflow:0 schemas /opt/airstream/schemas
COPY --chown=airflow:0 airflow_listener /opt/airstream/airflow_listener
COPY --chown=airflow:0 dagster_consumer /opt/airstream/dagster_consumer

# The constraint keeps pip from resolving apache-airflow to anything but the image's own version.
RUN printf 'apache-airflow==3.3.2\n' > /tmp/airflow-pin.txt \
    && pip install --no-cache-dir --constraint /tmp/airflow-pin.txt "/opt/airstream[airflow]" \
    && rm /tmp/airflow-pin.txt \
    && python -c "import airflow; assert airflow.__version__ == '3.3.2', airflow.__version__"

# SimpleAuthManager reads (and may rewrite) this file: it must belong to airflow.
# Referenced by AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE in docker-compose.yml.
RUN echo '{"admin": "admin"}' > /opt/airflow/passwords.json \
    && mkdir -p /opt/airflow/airstream-spool
