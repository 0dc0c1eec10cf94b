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
a second sync into the same file fails to open it.

Example:

    >>> import tempfile
    >>> store = DuckDBStore(f"duckdb:///{tempfile.mkdtemp()}/warehouse.duckdb")
    >>> store.prepare(), store.scan().recorded
    (0, {})
    >>> store.close()
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from batch_export.errors import InvalidInputError, OutputError
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.store import JobLoad, StoreState
from batch_export.sync.stores.tables import (
    STORE_JOBS_SCHEMA,
    Spool,
    columns_to_add,
    first_line,
    jobs_row,
    sql_type,
    state_of,
    table_names,
)

__all__ = ["SCHEME", "DuckDBStore", "duckdb_path", "duckdb_type"]

SCHEME = "duckdb://"


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
    return sql_type(kind, _TYPES)


_TYPES = {
    "text": "VARCHAR",
    "bigint": "BIGINT",
    "integer": "INTEGER",
    "date": "DATE",
    "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "timestamp": "TIMESTAMP",
}


class DuckDBStore:
    """The ``items`` and ``jobs`` tables (names configurable) of one DuckDB file."""

    def __init__(self, url: str, *, items_table: str = "items", jobs_table: str = "jobs") -> None:
        self.url = url
        self.path = duckdb_path(url)
        self._tables = table_names(items_table, jobs_table)
        self._schemas = {"items": ITEM_SCHEMA, "jobs": STORE_JOBS_SCHEMA}
        self._lock = threading.Lock()
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._ready = False

    def scan(self) -> StoreState:
        """The tokens of the jobs table (none when it does not exist yet)."""
        name, quoted = self._tables["jobs"]
        with self._session("read", "jobs") as con:
            if not self._columns(con, name):
                return StoreState()
            rows = con.execute(f"SELECT job_id, sync_token FROM {quoted}").fetchall()
        return state_of(rows)

    def prepare(self) -> int:
        """Create the tables, or add the columns a newer item schema has; nothing to remove."""
        with self._session("prepare", "items") as con:
            self._ensure(con)
        return 0

    def load(self, load: JobLoad, batches: Iterable[pa.RecordBatch]) -> int:
        """Replace the job's rows and its jobs row in one transaction; return its rows."""
        job_id = load.job.job_id
        with Spool(batches, schema=ITEM_SCHEMA) as spool:
            row = jobs_row(load, rows=spool.rows)
            with self._session(f"load job {job_id} into", "items") as con:
                self._ensure(con)
                con.begin()
                try:
                    self._replace(con, "items", job_id, spool.table())
                    self._replace(con, "jobs", job_id, row)
                    con.commit()
                except BaseException:
                    con.rollback()
                    raise
            return spool.rows

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _replace(
        self, con: duckdb.DuckDBPyConnection, table: str, job_id: str, data: pa.Table
    ) -> None:
        quoted = self._tables[table][1]
        con.execute(f"DELETE FROM {quoted} WHERE job_id = ?", [job_id])
        con.register("incoming", data)
        try:
            # BY NAME: a table that gained a column, or has one of its own, still lines up.
            con.execute(f"INSERT INTO {quoted} BY NAME SELECT * FROM incoming")
        finally:
            con.unregister("incoming")

    def _ensure(self, con: duckdb.DuckDBPyConnection) -> None:
        if self._ready:
            return
        for table in ("items", "jobs"):
            name, quoted = self._tables[table]
            wanted = {field.name: duckdb_type(field.type) for field in self._schemas[table]}
            existing = self._columns(con, name)
            if not existing:
                columns = ", ".join(f'"{column}" {kind}' for column, kind in wanted.items())
                con.execute(f"CREATE TABLE IF NOT EXISTS {quoted} ({columns})")
                continue
            for column in columns_to_add(name, existing, wanted, store="DuckDB"):
                con.execute(f'ALTER TABLE {quoted} ADD COLUMN "{column}" {wanted[column]}')
        self._ready = True

    def _columns(self, con: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
        rows = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            [name],
        ).fetchall()
        return {str(column): str(kind) for column, kind in rows}

    @contextmanager
    def _session(self, action: str, table: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """The store's one connection, for one caller at a time; driver errors translated."""
        with self._lock:
            try:
                yield self._connect()
            except (duckdb.Error, OSError) as error:
                raise OutputError(
                    f"DuckDB could not {action} table {self._tables[table][0]} of {self.path}: "
                    f"{first_line(error)}. Check the file (writable, not open in another "
                    "process) and the disk."
                ) from None

    def _connect(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = duckdb.connect(str(self.path))
        return self._connection
