# syntax=docker/dockerfile:1
# Dagster webserver + daemon with the airstream consumer (the `dagster` extra: no Airflow).
# Build context is the repository root: docker compose -f compose/docker-compose.yml build dagster-webserver
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

RUN useradd --create-home --uid 1000 dagster

# Only what the package ships (pyproject [tool.setuptools.packages.find]); README* may be absent.
# airstream/ links to the three package folders, which must come along. devstack/ holds the code
# location (example_definitions.py), loaded from its file through workspace.yaml.
WORKDIR /opt/airstream
COPY pyproject.toml LICENSE README* ./
COPY airstream /opt/airstream/airstream
COPY schemas /opt/airstream/schemas
COPY airflow_listener /opt/airstream/airflow_listener
COPY dagster_consumer /opt/airstream/dagster_consumer
COPY devstack /opt/airstream/devstack
RUN pip install --no-cache-dir "/opt/airstream[dagster]" dagster-webserver==1.13.27 dagster-graphql==1.13.27 \
    && python -c "import dagster; assert dagster.__version__ == '1.13.27', dagster.__version__"

# The code location (loaded through workspace.yaml) and the instance config. Run, event-log and
# schedule/sensor storage is SQLite under $DAGSTER_HOME/storage, a named volume that the webserver
# and the daemon share (see docker-compose.yml).
COPY compose/workspace.yaml /opt/dagster/workspace.yaml
COPY <<EOT /opt/dagster/home/dagster.yaml
telemetry:
  enabled: false
storage:
  sqlite:
    base_dir: /opt/dagster/home/storage
EOT
RUN mkdir -p /opt/dagster/home/storage && chown -R dagster:dagster /opt/dagster

USER dagster
WORKDIR /opt/dagster
EXPOSE 3000
