"""airstream beside Dagster's Airlift, measured in one run on this machine.

    scripts/bench                      # the full comparison (about 30 minutes on 2 cores)
    scripts/bench --quick              # a smoke run of a few minutes

``python -m bench.compare`` starts what it needs (the embedded broker, Airflow 2.11 with the
listener behind counting proxies, Airflow 3.3, ``dagster dev`` on SQLite and on PostgreSQL, and
``airstream stream`` beside it in a Dagster instance of its own), drives DAG runs, and writes
``results.json`` and ``latency.png`` into ``--out``, printing a table.
The sections (see :mod:`bench.compare.report`): observation latency and completeness per
observer (airstream's sensor and stream, Airlift at its default and fastest intervals), REST load
on Airflow per observer and DAG count, the listener's overhead, and the consumers' throughput
(sensor, replay, stream) beside Dagster's own write loop, with a profile of the sensor.

Dagster's Airlift is imported only by :mod:`bench.compare.definitions`, the code location the
benchmark's ``dagster dev`` loads; airstream's packages never import it.
"""
