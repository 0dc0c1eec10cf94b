"""What the SQL stores share: scan, prepare and load, written once over a dialect's hooks.

A SQL store (:mod:`~batch_export.sync.stores.duckdb`, :mod:`~batch_export.sync.stores.postgres`)
keeps the ``items`` and ``jobs`` tables of :mod:`~batch_export.sync.stores.tables` in a
database, and its watermark in :data:`~batch_export.sync.watermark.WATERMARK_TABLE`:

- :meth:`SqlStore.scan` reads the jobs table's ``(job_id, sync_token)`` pairs and the watermark;
- :meth:`SqlStore.prepare` creates the tables, or widens them by the evolution rule
  (:func:`~batch_export.sync.stores.tables.columns_to_add`), once per store;
- :meth:`SqlStore.load` spools the job's batches (the network stays out of the transaction),
  then, in one transaction, holds the job against other writers, replaces its rows, and
  replaces its jobs row: a reader sees the job as it was or as it is, never half.

A dialect says how, in hooks: its types (:attr:`SqlStore.types`), a connection and its
errors in one sentence (:meth:`SqlStore._session`), a transaction, statements with parameters
(``_query``, ``_execute``), column discovery (``_existing_columns``) and a job's rows replaced
from Arrow (``_replace``); and, where it has them, a lock across writers (``_hold``), its own
``CREATE TABLE`` and keys (``_create_table``, ``_after_tables``) and values it cannot hold
(:attr:`SqlStore.holds_every_value`, :mod:`~batch_export.sync.stores.values`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import pyarrow as pa

from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.store import ITEMS_TABLE, JOBS_TABLE, Closing, JobLoad, Loaded, StoreState
from batch_export.sync.stores.tables import (
    STORE_JOBS_SCHEMA,
    Spool,
    columns_to_add,
    jobs_row,
    sql_type,
    state_of,
    table_names,
)
from batch_export.sync.stores.values import HeldValues, held_values
from batch_export.sync.watermark import WATERMARK_TABLE, WatermarkSql

__all__ = ["SqlStore"]

Cursor = Any  # a dialect's connection or cursor (the drivers are untyped)


class SqlStore(Closing, ABC):
    """The ``items`` and ``jobs`` tables (names configurable) of one SQL database."""

    dialect: ClassVar[str]  # the database's name, in messages
    # Its spelling of text, bigint, integer, date, timestamptz and timestamp (see sql_type).
    types: ClassVar[dict[str, str]]
    marks: ClassVar[tuple[str, str]]  # its first two parameter marks
    json_columns: ClassVar[frozenset[str]] = frozenset()  # columns that hold JSON
    holds_every_value: ClassVar[bool] = True  # False: the rule of stores.values applies

    def __init__(
        self, url: str, *, items_table: str = ITEMS_TABLE, jobs_table: str = JOBS_TABLE
    ) -> None:
        self.url = url
        self._tables = table_names(items_table, jobs_table)
        self._columns = {
            table: {field.name: self.column_type(field.name, field.type) for field in schema}
            for table, schema in (("items", ITEM_SCHEMA), ("jobs", STORE_JOBS_SCHEMA))
        }
        self._watermark = WatermarkSql.of(text=self.types["text"], marks=self.marks)
        self._ready_lock = threading.Lock()
        self._ready = False

    @classmethod
    def column_type(cls, name: str, kind: pa.DataType) -> str:
        """The dialect's column type for a column of the item or jobs schema."""
        return sql_type(kind, cls.types)

    def scan(self) -> StoreState:
        """The tokens of the jobs table (none when it does not exist yet), and the watermark."""
        name, quoted = self._tables["jobs"]
        with self._session("read", "jobs") as con, self._transaction(con) as cursor:
            if not self._existing_columns(cursor, name, quoted):
                return StoreState()
            rows = self._query(cursor, f"SELECT job_id, sync_token FROM {quoted}")
            watermark = None
            if self._existing_columns(cursor, WATERMARK_TABLE, WATERMARK_TABLE):
                found = self._query(cursor, self._watermark.select, (name,))
                watermark = found[0][0] if found else None
        state = state_of(rows)
        return StoreState(recorded=state.recorded, whole=state.whole, watermark=watermark)

    def prepare(self) -> int:
        """Create the tables, or add the columns a newer item schema has; nothing to remove."""
        with self._session("create or widen", "items") as con:
            self._ensure(con)
        return 0

    def load(self, load: JobLoad, batches: Iterable[pa.RecordBatch]) -> Loaded:
        """Replace the job's rows and its jobs row in one transaction; return its rows."""
        job_id = load.job.job_id
        rule = None if self.holds_every_value else HeldValues(json_columns=self.json_columns)
        with Spool(batches, schema=ITEM_SCHEMA, transform=rule) as spool:
            row = self._jobs_row(load, rows=spool.rows, rule=rule)
            with self._session(f"load job {job_id} into", "items") as con:
                self._ensure(con)
                with self._transaction(con) as cursor:
                    self._hold(cursor, f"job:{job_id}")
                    self._replace(cursor, "items", job_id, spool.table())
                    self._replace(cursor, "jobs", job_id, row)
            changed = row.column("values_changed")[0].as_py()
            return Loaded(rows=spool.rows, values_changed=changed)

    def save_watermark(self, document: str) -> None:
        """Keep the sync's watermark: the jobs table's row of ``batch_export_watermark``."""
        jobs = self._tables["jobs"][0]
        with self._session("save the watermark of", "jobs") as con, self._transaction(con) as cur:
            self._hold(cur, "setup")  # two syncs would both create the table
            self._execute(cur, self._watermark.create)
            self._execute(cur, self._watermark.replace, (jobs, document))

    def _jobs_row(self, load: JobLoad, *, rows: int, rule: HeldValues | None) -> pa.Table:
        """The job's jobs row; with the value rule, held, counting the row's own changes."""
        row = jobs_row(load, rows=rows, values_changed=rule.changed if rule else 0)
        if rule is None:
            return row
        held, changed = held_values(row, json_columns=self.json_columns)
        if changed:
            recounted = jobs_row(load, rows=rows, values_changed=rule.changed + changed)
            held, _ = held_values(recounted, json_columns=self.json_columns)
        assert isinstance(held, pa.Table)
        return held

    def _ensure(self, con: Cursor) -> None:
        """Create or widen the tables, once per store (another sync may do it meanwhile)."""
        with self._ready_lock:
            if self._ready:
                return
            with self._transaction(con) as cursor:
                self._hold(cursor, "setup")
                for table in ("items", "jobs"):
                    self._ensure_table(cursor, table)
                self._after_tables(cursor)
            self._ready = True

    def _ensure_table(self, cursor: Cursor, table: str) -> None:
        name, quoted = self._tables[table]
        wanted = self._columns[table]
        existing = self._existing_columns(cursor, name, quoted)
        if not existing:
            self._create_table(cursor, table)
            return
        for column in columns_to_add(name, existing, wanted, store=self.dialect):
            self._execute(
                cursor, f'ALTER TABLE {quoted} ADD COLUMN IF NOT EXISTS "{column}" {wanted[column]}'
            )

    def _create_table(self, cursor: Cursor, table: str) -> None:
        """``CREATE TABLE`` with the columns of the table's schema."""
        columns = ", ".join(f'"{column}" {kind}' for column, kind in self._columns[table].items())
        self._execute(cursor, f"CREATE TABLE IF NOT EXISTS {self._tables[table][1]} ({columns})")

    def _after_tables(self, cursor: Cursor) -> None:
        """What the dialect adds once the tables are there (keys, indexes); nothing here."""

    def _hold(self, cursor: Cursor, what: str) -> None:
        """Hold ``what`` (``setup``, ``job:<id>``) against other writers until the
        transaction ends; nothing for a dialect that takes one writer at a time."""

    @abstractmethod
    def _session(self, action: str, table: str) -> AbstractContextManager[Cursor]:
        """A connection for one caller; its errors as one :class:`OutputError` saying that
        the store could not ``action`` ``table``."""

    @abstractmethod
    def _transaction(self, con: Cursor) -> AbstractContextManager[Cursor]:
        """A transaction on ``con``, committed when the block ends, undone if it fails."""

    @abstractmethod
    def _query(self, cursor: Cursor, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        """The rows of a query."""

    @abstractmethod
    def _execute(self, cursor: Cursor, sql: str, parameters: Sequence[Any] = ()) -> None:
        """Run a statement."""

    @abstractmethod
    def _existing_columns(self, cursor: Cursor, name: str, quoted: str) -> dict[str, str]:
        """The columns of table ``name`` (``quoted`` for SQL) and their types; {} if none."""

    @abstractmethod
    def _replace(self, cursor: Cursor, table: str, job_id: str, data: pa.Table) -> None:
        """Delete the job's rows of ``table``, then insert ``data`` (the job's new rows)."""
