"""A DuckDB database file: tables ``items`` and ``jobs``, each job loaded in one transaction.

``duckdb:///path/to/warehouse.duckdb`` names the file (``duckdb://`` then the path: three
slashes for an absolute path, ``duckdb://warehouse.duckdb`` for a relative one); its folder is
created when missing. ``items`` has the columns of :data:`~batch_export.schema.ITEM_SCHEMA`
(``links`` is ``VARCHAR[]``, ``extra`` JSON text in a ``VARCHAR``), ``jobs`` those of
:data:`~batch_export.sync.stores.tables.STORE_JOBS_SCHEMA`.

A load deletes the job's rows and inserts the new ones straight from Arrow
(``INSERT INTO items BY NAME SELECT * FROM <arrow table>``), then replaces its jobs row, in one
transaction: a reader sees the job as it was or as it is, never half. The job's batches are
spooled to a temporary Arrow file first, so that several jobs download at once while their
transactions take the one connection in turn. DuckDB lets one process write a file at a time:
a second sync into the same file (another process, or another store in this one) stops at
once, with one sentence naming the process that has it open.

Example:

    >>> import tempfile
    >>> with DuckDBStore(f"duckdb:///{tempfile.mkdtemp()}/warehouse.duckdb") as store:
    ...     store.prepare(), store.scan().recorded
    (0, {})
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import duckdb
import pyarrow as pa

from batch_export.errors import InvalidInputError, OutputError
from batch_export.sync.store import ITEMS_TABLE, JOBS_TABLE
from batch_export.sync.stores.native import native_condition, native_reason
from batch_export.sync.stores.sql import SqlStore
from batch_export.sync.stores.tables import first_line

__all__ = ["SCHEME", "DuckDBStore", "duckdb_path", "duckdb_type"]

SCHEME = "duckdb://"
# The files this process's stores have open: a second store of one file is refused as a
# second process is (DuckDB would let it in, and fail its transactions on conflicts).
_OPEN: dict[Path, int] = {}
_OPEN_LOCK = threading.Lock()
# What DuckDB says when another process holds the file's lock.
_LOCK_HELD = re.compile(r"Could not set lock on file .*\(PID (\d+)\)", re.DOTALL)


def duckdb_path(url: str) -> Path:
    """The database file a ``duckdb://`` URL names.

    >>> duckdb_path("duckdb:///var/lib/warehouse.duckdb"), duckdb_path("duckdb://w.duckdb")
    (PosixPath('/var/lib/warehouse.duckdb'), PosixPath('w.duckdb'))
    """
    if not url.startswith(SCHEME) or not url[len(SCHEME) :]:
        raise InvalidInputError(
            f"Expected a DuckDB destination as duckdb:///path/to/file.duckdb, got {url!r}."
        )
    return Path(url[len(SCHEME) :])


def duckdb_type(kind: pa.DataType) -> str:
    """The DuckDB column type that holds an Arrow type of the item or jobs schema.

    >>> duckdb_type(pa.list_(pa.string()))
    'VARCHAR[]'
    """
    return DuckDBStore.column_type("", kind)


class DuckDBStore(SqlStore):
    """The ``items`` and ``jobs`` tables (names configurable) of one DuckDB file."""

    dialect = "DuckDB"
    types: ClassVar[dict[str, str]] = {
        "text": "VARCHAR",
        "bigint": "BIGINT",
        "integer": "INTEGER",
        "date": "DATE",
        "timestamptz": "TIMESTAMP WITH TIME ZONE",
        "timestamp": "TIMESTAMP",
    }
    marks = ("?", "?")

    def __init__(
        self, url: str, *, items_table: str = ITEMS_TABLE, jobs_table: str = JOBS_TABLE
    ) -> None:
        self.path = duckdb_path(url)
        super().__init__(url, items_table=items_table, jobs_table=jobs_table)
        self._connection_lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None

    def close(self) -> None:
        """Close the database file."""
        with self._connection_lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
                with _OPEN_LOCK:
                    _OPEN.pop(self.path.resolve(), None)

    def _replace(
        self, cursor: duckdb.DuckDBPyConnection, table: str, job_id: str, data: pa.Table
    ) -> None:
        quoted = self._tables[table][1]
        cursor.execute(f"DELETE FROM {quoted} WHERE job_id = ?", [job_id])
        cursor.register("incoming", data)
        try:
            # BY NAME: a table that gained a column, or has one of its own, still lines up.
            cursor.execute(f"INSERT INTO {quoted} BY NAME SELECT * FROM incoming")
        finally:
            cursor.unregister("incoming")

    def _existing_columns(
        self, cursor: duckdb.DuckDBPyConnection, name: str, quoted: str
    ) -> dict[str, str]:
        rows = cursor.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            [name],
        ).fetchall()
        return {str(column): str(kind) for column, kind in rows}

    def _query(
        self, cursor: duckdb.DuckDBPyConnection, sql: str, parameters: Sequence[Any] = ()
    ) -> list[Any]:
        return cursor.execute(sql, list(parameters)).fetchall()

    def _execute(
        self, cursor: duckdb.DuckDBPyConnection, sql: str, parameters: Sequence[Any] = ()
    ) -> None:
        cursor.execute(sql, list(parameters))

    @contextmanager
    def _transaction(self, con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
        con.begin()
        try:
            yield con
        except BaseException:
            # A commit that failed (a full disk) has ended the transaction already: its own
            # error, not "no transaction is active", is the one to tell.
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            raise
        con.commit()

    @contextmanager
    def _session(self, action: str, table: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """The store's one connection, for one caller at a time; driver errors translated."""
        with self._connection_lock:
            try:
                yield self._connect()
            except (duckdb.Error, OSError) as error:
                raise self._refused(action, table, error) from None

    def _refused(self, action: str, table: str, error: BaseException) -> OutputError:
        held = _LOCK_HELD.search(str(error))
        if held:
            return OutputError(
                f"{self.path} is open in another process (pid {held.group(1)}), and DuckDB "
                "lets one process write a file at a time: run one sync at a time per DuckDB "
                "file, or wait for that one to end."
            )
        if native_condition(error):  # a full or read-only disk, in our words
            return OutputError(
                f"DuckDB could not {action} table {self._tables[table][0]} of {self.path}: "
                f"{native_reason(error, said=first_line(error))}. Free space there, or give "
                "a writable path, then rerun."
            )
        return OutputError(
            f"DuckDB could not {action} table {self._tables[table][0]} of {self.path}: "
            f"{first_line(error)}. Check that the file is a DuckDB database and can be written."
        )

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            resolved = self.path.resolve()
            with _OPEN_LOCK:
                if _OPEN.setdefault(resolved, id(self)) != id(self):
                    raise OutputError(
                        f"{self.path} is open in another store of this process (pid "
                        f"{os.getpid()}), and DuckDB lets one writer use a file at a time: run "
                        "one sync at a time per DuckDB file, or wait for that one to end."
                    )
            try:
                self._connection = duckdb.connect(str(self.path))
            except BaseException:
                with _OPEN_LOCK:
                    _OPEN.pop(resolved, None)
                raise
        return self._connection
