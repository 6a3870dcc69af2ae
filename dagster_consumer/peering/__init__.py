"""Peering: an Airflow instance's DAGs and Airflow assets as Dagster assets, fetched over REST and cached.

The public names are exported from :mod:`airstream.dagster_consumer`. Modules: ``filter``
(:class:`AirflowFilter`), ``snapshot`` (what is fetched and stored), ``specs`` (the asset specs
built from it), ``loader`` (the cache, on Dagster's state-backed components), ``component`` (the
YAML component), ``cli`` (``airstream peering refresh``), ``dagster_state`` (the only use of
Dagster internals).

Example::

    from airstream.dagster_consumer import AirflowFilter, build_defs_from_airflow_instance

    defs = build_defs_from_airflow_instance(
        airflow_instance=prod,                       # an AirflowInstance with REST access
        airflow_filter=AirflowFilter(dag_id_pattern="warehouse_*"),
    )
"""
