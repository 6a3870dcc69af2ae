"""airstream: observe Apache Airflow from Dagster through events, then take it over task by task.

The distribution installs three packages under this one name, so that they neither shadow nor
are shadowed by a user's own modules (a DAGs repository with a ``schemas`` package, say):

* :mod:`airstream.schemas`, the event contract both sides share;
* :mod:`airstream.airflow_listener`, the Airflow side (``pip install "airstream[airflow]"``);
* :mod:`airstream.dagster_consumer`, the Dagster side (``pip install "airstream[dagster]"``).

In the repository they live in the top-level folders of the same names; ``airstream/`` links to them.
"""

__version__ = "0.1.0"
