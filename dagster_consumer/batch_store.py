"""Storing many runless asset events in Dagster's event log at once.

Dagster's public call, ``DagsterInstance.report_runless_asset_event``, stores one event per call:
on PostgreSQL that is two or three new connections and transactions per event (the event row
with a ``NOTIFY``, then the asset-key record and indexed tags, or the check execution row); on
SQLite two or three transactions on two database files. :func:`store_asset_events` stores a
whole list in one transaction per database (PostgreSQL: one; SQLite: the runless run's shard and
the index shard) and writes exactly the rows the per-event call writes:

* one ``event_logs`` row per event, built as Dagster builds it (an ``EventLogEntry`` with a
  ``DagsterEvent`` of type ``ASSET_MATERIALIZATION``, ``ASSET_OBSERVATION`` or
  ``ASSET_CHECK_EVALUATION``, the runless run id and job name ``""``, a timestamp per event), in
  the same order, so storage ids keep their order; on SQLite in the runless shard and mirrored
  into the index shard, whose ids are the storage ids;
* the indexed tags of materializations and observations (``asset_event_tags``);
* per asset key the ``asset_keys`` record the last of its events leaves behind (its latest
  materialization, run id and last-event timestamp), with Dagster's own upsert;
* one ``asset_check_executions`` row per check evaluation, as Dagster writes a runless one.

This is the only module of the consumer that uses Dagster's storage internals (the names are
private and may change in any release). It batches only where it was checked against Dagster's
source: the 1.13 releases (the storage code of 1.13.0, 1.13.27 and 1.13.29 was compared;
dagster-postgres 0.29.27), on the storages whose ``store_event`` it knows
(``SqliteEventLogStorage``, ``PostgresEventLogStorage``). Anything else (Dagster 1.12, whose
SQLite storage does not mirror check evaluations into the index shard; another storage; a
storage that overrides ``store_event``; freshness events) is stored with the public per-event
call, and the first such fallback is logged as a warning naming the version and the storage: a
slower replay is better than a replay that stops, or one that stores something else than Dagster
would. ``tests/dagster_consumer/test_batch_store.py`` compares both paths through Dagster's public
API on SQLite and PostgreSQL, and fails when an upgrade makes them differ or makes this module
fall back.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import dagster
from dagster import AssetCheckEvaluation, AssetMaterialization, AssetObservation

logger = logging.getLogger(__name__)

# The Dagster releases whose storage code this module reproduces (major, minor).
_CHECKED_RELEASES = ((1, 13),)
_warned: set[str] = set()


class BatchStoreError(RuntimeError):
    """Dagster's storage did not answer a batch as this module expects (e.g. fewer ids than
    rows). The index transaction is rolled back (on PostgreSQL, all of the batch); on SQLite the
    runless run's shard keeps the batch's rows, as it keeps an event whose ``store_event`` fails
    after its first write."""


def store_asset_events(instance: Any, asset_events: Iterable[Any]) -> None:
    """Store ``asset_events`` (``AssetMaterialization``, ``AssetObservation``,
    ``AssetCheckEvaluation``) in ``instance`` as runless events, in their order, as
    ``instance.report_runless_asset_event`` would one by one, in a few transactions.

    Each run of batchable events is stored in one transaction per database; an event this module
    cannot batch (another type, an unchecked Dagster release or storage) goes through
    ``report_runless_asset_event``.

    Example::

        store_asset_events(context.instance, [AssetMaterialization("orders"), evaluation])
    """
    events = list(asset_events)
    if not events:
        return
    writer = _writer_for(instance)
    if writer is None:
        for asset_event in events:
            instance.report_runless_asset_event(asset_event)
        return
    pending: list[Any] = []
    for asset_event in events:
        if isinstance(asset_event, AssetMaterialization | AssetObservation | AssetCheckEvaluation):
            pending.append(asset_event)
            continue
        writer.store(pending)
        pending = []
        instance.report_runless_asset_event(asset_event)
    writer.store(pending)


def batches_on(instance: Any) -> bool:
    """Whether :func:`store_asset_events` batches on ``instance`` (else it stores event by event)."""
    return _writer_for(instance) is not None


def _writer_for(instance: Any) -> _BatchWriter | None:
    version = tuple(int(part) for part in dagster.__version__.split(".")[:2] if part.isdigit())
    storage: Any = getattr(instance, "event_log_storage", None)
    storage_name = type(storage).__name__
    if version not in _CHECKED_RELEASES:
        _warn_once(
            f"dagster {dagster.__version__}",
            f"Dagster {dagster.__version__} is not a release whose event-log storage code airstream's batch "
            f"store was checked against ({', '.join('.'.join(map(str, r)) for r in _CHECKED_RELEASES)}); "
            "asset events are stored one by one with report_runless_asset_event (correct, slower)",
        )
        return None
    try:
        kind = _storage_kind(storage)
    except ImportError as error:  # a Dagster build without the internals this module names
        _warn_once(
            f"import {error}",
            f"Dagster {dagster.__version__} lacks an internal name the batch store uses ({error}); asset "
            "events are stored one by one with report_runless_asset_event",
        )
        return None
    if kind is None:
        _warn_once(
            f"storage {storage_name}",
            f"the event-log storage {storage_name} is not one the batch store knows (SQLite, PostgreSQL); "
            "asset events are stored one by one with report_runless_asset_event",
        )
        return None
    if not storage.supports_asset_checks:
        return None  # Dagster's own call raises its error: "run `dagster instance migrate`"
    return _BatchWriter(instance, storage, sqlite_shards=kind == "sqlite")


def _storage_kind(storage: Any) -> str | None:
    """``"sqlite"`` or ``"postgres"`` when ``storage``'s ``store_event`` is Dagster's own for it."""
    from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage

    if isinstance(storage, SqliteEventLogStorage) and type(storage).store_event is SqliteEventLogStorage.store_event:
        return "sqlite"
    try:
        from dagster_postgres.event_log.event_log import PostgresEventLogStorage
    except ImportError:
        return None
    if (
        isinstance(storage, PostgresEventLogStorage)
        and type(storage).store_event is PostgresEventLogStorage.store_event
    ):
        return "postgres"
    return None


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning(message)


class _BatchWriter:
    """Writes batches to one instance's SQL event-log storage (Dagster 1.13's tables and calls)."""

    def __init__(self, instance: Any, storage: Any, *, sqlite_shards: bool) -> None:
        self.instance = instance
        self.storage = storage
        self.sqlite_shards = sqlite_shards

    def store(self, asset_events: Sequence[Any]) -> None:
        if not asset_events:
            return
        from dagster._core.instance.utils import RUNLESS_RUN_ID
        from dagster._core.storage.event_log.schema import SqlEventLogStorageTable

        entries = [_runless_entry(asset_event) for asset_event in asset_events]
        # The rows prepare_insert_event builds, each event serialized once for every table.
        rows = [self.storage._event_to_row(entry) for entry in entries]
        if self.sqlite_shards:
            # SqliteEventLogStorage.store_event: the row in the run's shard, mirrored in the index shard.
            with self.storage.run_connection(RUNLESS_RUN_ID) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), rows)
        with self.storage.index_transaction() as conn:
            ids = self._insert_indexed(conn, rows)
            self._index(conn, entries, rows, ids)
        # handle_new_event hands each stored event to the instance's listeners of its run.
        listeners: Sequence[Callable[[Any], None]] = self.instance._subscribers.get(RUNLESS_RUN_ID, ())
        for entry in entries:
            for listener in listeners:
                listener(entry)

    def _insert_indexed(self, conn: Any, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert ``rows`` in ``event_logs``, in order; their storage ids, in the same order."""
        from dagster._core.storage.event_log.schema import SqlEventLogStorageTable

        # SQLAlchemy's "insertmanyvalues": multi-row INSERTs ... RETURNING, compiled once, whose
        # ids it hands back in the order of the parameters.
        insert = SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True)
        ids = [int(row[0]) for row in conn.execute(insert, list(rows)).fetchall()]
        if len(ids) != len(rows) or any(later <= earlier for earlier, later in itertools.pairwise(ids)):
            raise BatchStoreError(
                f"Dagster's event log returned ids out of the order of {len(rows)} inserted events: {ids[:10]}..."
            )
        if not self.sqlite_shards and ids:
            from dagster._core.instance.utils import RUNLESS_RUN_ID
            from dagster_postgres.event_log.event_log import CHANNEL_NAME
            from sqlalchemy import text

            # PostgresEventLogStorage.store_event notifies each row for older watchers; one
            # notification of the batch's last row wakes them to read every row before it.
            conn.execute(text(f"NOTIFY {CHANNEL_NAME}, :notify_id"), {"notify_id": f"{RUNLESS_RUN_ID}_{ids[-1]}"})
        return ids

    def _index(self, conn: Any, entries: Sequence[Any], rows: Sequence[dict[str, Any]], ids: Sequence[int]) -> None:
        from dagster._core.events import DagsterEventType

        assets = [
            (entry, event_id)
            for entry, event_id in zip(entries, ids, strict=True)
            if entry.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION
        ]
        if assets:
            self.storage._store_asset_event_tags(conn, [e for e, _ in assets], [i for _, i in assets])
            for entry, event_id in _asset_key_updates(assets):
                self.storage._store_asset_event(conn, entry, event_id)
        checks = [
            _check_execution_row(entry, row, event_id)
            for entry, row, event_id in zip(entries, rows, ids, strict=True)
            if entry.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        ]
        if checks:
            from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable

            conn.execute(AssetCheckExecutionsTable.insert(), checks)


def _runless_entry(asset_event: Any) -> Any:
    """The ``EventLogEntry`` ``report_runless_asset_event`` builds for ``asset_event``
    (``AssetMethods._report_runless_asset_event`` and ``EventMethods.report_dagster_event``)."""
    from dagster._core.events import AssetObservationData, DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID
    from dagster._time import get_current_timestamp

    payload: Any
    if isinstance(asset_event, AssetMaterialization):
        event_type, payload = DagsterEventType.ASSET_MATERIALIZATION, StepMaterializationData(asset_event)
    elif isinstance(asset_event, AssetCheckEvaluation):
        event_type, payload = DagsterEventType.ASSET_CHECK_EVALUATION, asset_event
    else:
        event_type, payload = DagsterEventType.ASSET_OBSERVATION, AssetObservationData(asset_event)
    dagster_event = DagsterEvent(
        event_type_value=event_type.value, event_specific_data=payload, job_name=RUNLESS_JOB_NAME
    )
    return EventLogEntry(
        user_message="",
        level=logging.INFO,
        job_name=dagster_event.job_name,
        run_id=RUNLESS_RUN_ID,
        error_info=None,
        timestamp=get_current_timestamp(),
        step_key=dagster_event.step_key,
        dagster_event=dagster_event,
    )


def _asset_key_updates(assets: Sequence[tuple[Any, int]]) -> list[tuple[Any, int]]:
    """The ``asset_keys`` upserts that leave each key's record as one upsert per event would.

    A materialization sets the key's latest materialization, run id and event timestamp; an
    observation only the timestamp. So the record after all events is the one left by the key's
    last materialization followed by its last event (when that is a later observation).
    """
    last_materialization: dict[Any, tuple[Any, int]] = {}
    last_event: dict[Any, tuple[Any, int]] = {}
    for entry, event_id in assets:
        key = entry.dagster_event.asset_key
        last_event[key] = (entry, event_id)
        if entry.dagster_event.is_step_materialization:
            last_materialization[key] = (entry, event_id)
    updates: list[tuple[Any, int]] = []
    for key, last in last_event.items():
        materialization = last_materialization.get(key)
        if materialization is not None:
            updates.append(materialization)
        if materialization is not last:
            updates.append(last)
    return updates


def _check_execution_row(entry: Any, row: dict[str, Any], event_id: int) -> dict[str, Any]:
    """The ``asset_check_executions`` row of a runless evaluation
    (``SqlEventLogStorage._store_runless_asset_check_evaluation``), from its ``event_logs`` row."""
    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    evaluation = entry.dagster_event.event_specific_data
    status = AssetCheckExecutionRecordStatus.SUCCEEDED if evaluation.passed else AssetCheckExecutionRecordStatus.FAILED
    target = evaluation.target_materialization_data
    return {
        "asset_key": evaluation.asset_key.to_string(),
        "check_name": evaluation.check_name,
        "run_id": entry.run_id,
        "execution_status": status.value,
        "evaluation_event": row["event"],  # serialize_value(entry)
        "evaluation_event_timestamp": row["timestamp"],  # _event_insert_timestamp(entry)
        "evaluation_event_storage_id": event_id,
        "materialization_event_storage_id": target.storage_id if target else None,
        "partition": evaluation.partition,
    }


__all__: Sequence[str] = ["BatchStoreError", "batches_on", "store_asset_events"]
