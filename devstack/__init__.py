"""Local stack for the demo and the tests: an embedded Kafka broker, Airflow and Dagster processes."""
