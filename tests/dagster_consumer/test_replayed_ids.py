"""The inbox through which ``airstream replay`` hands the ids it recorded to the sensor."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import DagsterInstance

from airstream.dagster_consumer import replayed_ids
from airstream.dagster_consumer.dagster_kvs import read_values


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with DagsterInstance.ephemeral() as dagster_instance:
        yield dagster_instance


def test_entries_are_taken_once_in_order_and_their_space_given_back(instance: DagsterInstance) -> None:
    assert replayed_ids.take(instance, "prod", 0) == (0, {})
    replayed_ids.publish(instance, "prod", {1: 490_000, 2: 490_001})
    replayed_ids.publish(instance, "prod", {})  # an empty batch adds no entry
    replayed_ids.publish(instance, "prod", {3: 490_002})
    replayed_ids.publish(instance, "staging", {9: 490_000})  # another instance's inbox

    assert replayed_ids.take(instance, "prod", 0) == (2, {1: 490_000, 2: 490_001, 3: 490_002})
    assert replayed_ids.take(instance, "prod", 1) == (2, {3: 490_002}), "only the entries not taken yet"
    assert replayed_ids.take(instance, "prod", 2) == (2, {})

    replayed_ids.blank(instance, "prod", 0, 2)
    keys = ["airstream/replayed_ids/prod/0", "airstream/replayed_ids/prod/1"]
    assert read_values(instance, keys) == dict.fromkeys(keys, "")
    replayed_ids.publish(instance, "prod", {4: 490_003})
    assert replayed_ids.take(instance, "prod", 2) == (3, {4: 490_003}), "numbering goes on after a blank"
    assert replayed_ids.take(instance, "staging", 0) == (1, {9: 490_000})
