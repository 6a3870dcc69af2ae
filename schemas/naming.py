"""The one rule for Airflow instance names, shared by the listener and the consumer.

An instance name goes into every event, into Dagster asset keys (``[name, "dag", dag_id]``)
and into the sensor's name, so both sides accept exactly the same names.
"""

from __future__ import annotations

import re

INSTANCE_NAME_PATTERN = r"^[A-Za-z0-9_]{1,64}$"

_INSTANCE_NAME = re.compile(INSTANCE_NAME_PATTERN)


class InvalidInstanceName(ValueError):
    """An Airflow instance name that airstream cannot use."""


def validate_instance_name(name: object) -> str:
    """Return ``name`` if it is a valid instance name; raise :class:`InvalidInstanceName` otherwise.

    Example::

        validate_instance_name("prod_eu")   # "prod_eu"
        validate_instance_name("prod-eu")   # raises InvalidInstanceName
    """
    if not isinstance(name, str) or not _INSTANCE_NAME.fullmatch(name):
        raise InvalidInstanceName(
            f"instance name {name!r} is invalid: use 1 to 64 letters, digits and underscores "
            "(it becomes part of Dagster asset keys and the sensor's name)"
        )
    return name
