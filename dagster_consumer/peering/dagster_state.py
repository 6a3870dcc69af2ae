"""The one place airstream touches Dagster's non-public defs-state internals.

Peering stores its snapshot with Dagster's public state-backed components
(:class:`dagster.StateBackedComponent`, ``VERSIONED_STATE_STORAGE``): the snapshot is a blob in
the Dagster instance's defs-state storage and its version pointer is in the instance's key-value
store. Dagster 1.13's public API fetches state only under ``dagster dev``/``dg`` (and then on
every load) or when asked (``dg utils refresh-defs-state``, the UI's component Refresh). Peering
also needs, and Dagster offers no public name for:

* whether a version is stored yet, to fetch once on the very first load (``DefsStateStorage``);
* telling the load in progress which version it just stored, as ``StateBackedComponent.build_defs``
  itself does for its dev refresh (``DefinitionsLoadContext.add_defs_state_info``), so the code
  location's state info and later reconstructions (run workers) name that version;
* making an instance's defs-state storage current outside a code server (the refresh command
  and the refresh job), as ``DagsterInstance.__enter__`` and the gRPC server do
  (``set_defs_state_storage``).

A Dagster upgrade that moves these breaks this module only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import DagsterInstance
from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext, DefinitionsLoadType
from dagster._core.storage.defs_state.base import DefsStateStorage, set_defs_state_storage


def has_state_storage() -> bool:
    """Whether the load in progress has a Dagster instance's defs-state storage to read and write."""
    return DefsStateStorage.get() is not None


def stored_version(key: str) -> str | None:
    """The latest version stored under ``key`` in the current defs-state storage, if any."""
    storage = DefsStateStorage.get()
    return storage.get_latest_version(key) if storage is not None else None


def is_initializing() -> bool:
    """Whether definitions are being defined (code server start, reload), not reconstructed (a run worker)."""
    return DefinitionsLoadContext.get().load_type == DefinitionsLoadType.INITIALIZATION


def record_loaded_version(key: str, version: str) -> None:
    """Tell the load in progress that ``key`` is now at ``version``."""
    DefinitionsLoadContext.get().add_defs_state_info(key, version)


@contextmanager
def instance_state_storage(instance: DagsterInstance) -> Iterator[None]:
    """Make ``instance``'s defs-state storage the current one for the block."""
    storage = instance.defs_state_storage
    if storage is None:
        raise RuntimeError(
            "this Dagster instance has no defs-state storage, so the Airflow peering snapshot cannot be stored; "
            "use a persistent instance (DAGSTER_HOME) or configure defs_state_storage in dagster.yaml"
        )
    with set_defs_state_storage(storage):
        yield
