"""A PostgreSQL database: tables ``items`` and ``jobs``, loaded through ADBC (COPY).

``postgresql://user@host:port/database`` names the database; the password comes from
``PGPASSWORD`` or ``~/.pgpass`` (libpq reads them), never from the URL, which shows in
``ps`` and in logs. Tables are created when missing, with types that keep the schema:
``bigint``, ``integer``, ``text``, ``text[]`` for ``links``, ``jsonb`` for ``extra`` (and the
jobs table's ``config`` and ``fingerprint``), ``timestamp with time zone``.

Each job is one transaction on a connection of the store's own: the job's rows deleted, the
new ones copied (``cursor.adbc_ingest``, PostgreSQL's binary COPY) into a temporary staging
table and inserted from there with casts (text to ``jsonb``), then its jobs row replaced the
same way. Loads from several threads each take a connection of their own.

Example:

    >>> store = PostgresStore("postgresql://loader@db.internal:5432/warehouse")  # doctest: +SKIP
    >>> store.prepare()  # doctest: +SKIP
    0
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_postgres
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
    quoted_identifier,
    sql_type,
    state_of,
    table_names,
)

__all__ = ["JSON_COLUMNS", "SCHEMES", "PostgresStore", "check_url", "postgres_type"]

SCHEMES = ("postgresql://", "postgres://")
JSON_COLUMNS = frozenset({"extra", "config", "fingerprint"})
_STAGE = "batch_export_stage"
_Connection = Any  # adbc_driver_postgresql's dbapi connection (untyped)


def check_url(url: str) -> str:
    """``url`` when it names a PostgreSQL database without a password in it.

    >>> check_url("postgresql://loader@127.0.0.1:5432/warehouse")
    'postgresql://loader@127.0.0.1:5432/warehouse'
    """
    if not url.startswith(SCHEMES):
        raise InvalidInputError(
            f"Expected a PostgreSQL destination as postgresql://user@host:port/db, got {url!r}."
        )
    parts = urlsplit(url)
    if parts.password is not None or "password" in parse_qs(parts.query):
        raise InvalidInputError(
            "The --dest URL holds a password, which would show in `ps` and in logs: remove it "
            "and set PGPASSWORD or a ~/.pgpass line instead."
        )
    return url


def postgres_type(name: str, kind: pa.DataType) -> str:
    """The PostgreSQL column type for a column of the item or jobs schema.

    >>> postgres_type("links", pa.list_(pa.string())), postgres_type("extra", pa.string())
    ('text[]', 'jsonb')
    """
    return "jsonb" if name in JSON_COLUMNS else sql_type(kind, _TYPES)


_TYPES = {
    "text": "text",
    "bigint": "bigint",
    "integer": "integer",
    "date": "date",
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
}


class PostgresStore:
    """The ``items`` and ``jobs`` tables (names configurable) of one PostgreSQL database."""

    def __init__(self, url: str, *, items_table: str = "items", jobs_table: str = "jobs") -> None:
        self.url = check_url(url)
        self._tables = table_names(items_table, jobs_table)
        self._columns = {
            table: {field.name: postgres_type(field.name, field.type) for field in schema}
            for table, schema in (("items", ITEM_SCHEMA), ("jobs", STORE_JOBS_SCHEMA))
        }
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._ready = False

    def scan(self) -> StoreState:
        """The tokens of the jobs table (none when it does not exist yet)."""
        quoted = self._tables["jobs"][1]
        with self._session("read", "jobs") as conn, conn.cursor() as cursor:
            if not _existing_columns(cursor, quoted):
                return StoreState()
            cursor.execute(f"SELECT job_id, sync_token FROM {quoted}")
            rows = cursor.fetchall()
            conn.commit()
        return state_of(rows)

    def prepare(self) -> int:
        """Create the tables, or add the columns a newer item schema has; nothing to remove."""
        with self._session("create or widen", "items") as conn:
            self._ensure(conn)
        return 0

    def load(self, load: JobLoad, batches: Iterable[pa.RecordBatch]) -> int:
        """Replace the job's rows and its jobs row in one transaction; return its rows."""
        job_id = load.job.job_id
        with Spool(batches, schema=ITEM_SCHEMA) as spool:
            row = jobs_row(load, rows=spool.rows)
            with self._session(f"load job {job_id} into", "items") as conn:
                self._ensure(conn)
                with conn.cursor() as cursor:
                    self._replace(cursor, "items", job_id, spool.reader())
                    self._replace(cursor, "jobs", job_id, row.to_reader())
                conn.commit()
            return spool.rows

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _replace(self, cursor: Any, table: str, job_id: str, data: pa.RecordBatchReader) -> None:
        quoted = self._tables[table][1]
        cursor.execute(f"DELETE FROM {quoted} WHERE job_id = $1", parameters=(job_id,))
        cursor.adbc_ingest(_STAGE, data, mode="create", temporary=True)
        names = ", ".join(f'"{column}"' for column in self._columns[table])
        casts = ", ".join(
            f'CAST("{column}" AS {kind})' for column, kind in self._columns[table].items()
        )
        cursor.execute(f"INSERT INTO {quoted} ({names}) SELECT {casts} FROM {_STAGE}")
        cursor.execute(f"DROP TABLE {_STAGE}")

    def _ensure(self, conn: _Connection) -> None:
        with self._lock:
            if self._ready:
                return
            with conn.cursor() as cursor:
                for table in ("items", "jobs"):
                    self._ensure_table(cursor, table)
            conn.commit()
            self._ready = True

    def _ensure_table(self, cursor: Any, table: str) -> None:
        name, quoted = self._tables[table]
        wanted = self._columns[table]
        existing = _existing_columns(cursor, quoted)
        if not existing:
            key = " PRIMARY KEY" if table == "jobs" else ""
            columns = ", ".join(
                f'"{column}" {kind}{key if column == "job_id" else ""}'
                for column, kind in wanted.items()
            )
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {quoted} ({columns})")
            if table == "items":  # each load deletes a job's rows: find them by index
                index = quoted_identifier(f"{name}_job_id"[:63], option="items_table")
                cursor.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {quoted} (job_id)")
            return
        for column in columns_to_add(name, existing, wanted, store="PostgreSQL"):
            cursor.execute(
                f'ALTER TABLE {quoted} ADD COLUMN IF NOT EXISTS "{column}" {wanted[column]}'
            )

    @contextmanager
    def _session(self, action: str, table: str) -> Iterator[_Connection]:
        """A connection of the store's own; driver errors translated, the transaction undone."""
        conn: _Connection | None = None
        try:
            conn = self._take()
            yield conn
        except (adbc_driver_manager.Error, OSError) as error:
            if conn is not None:
                conn.close()  # a failed session's state is unknown: never reused
                conn = None
            raise OutputError(
                f"PostgreSQL could not {action} table {self._tables[table][0]} at {self.url}: "
                f"{_reason(error)}. Check the server, the role's privileges and the disk (the "
                "password comes from PGPASSWORD or ~/.pgpass)."
            ) from None
        except BaseException:
            if conn is not None:
                conn.rollback()
            raise
        finally:
            if conn is not None:
                with self._lock:
                    self._idle.append(conn)

    def _take(self) -> _Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return adbc_postgres.connect(self.url, autocommit=False)


def _existing_columns(cursor: Any, quoted: str) -> dict[str, str]:
    cursor.execute(
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
        "ORDER BY a.attnum",
        parameters=(quoted,),
    )
    return {str(column): str(kind) for column, kind in cursor.fetchall()}


def _reason(error: BaseException) -> str:
    """The server's own words when there are some (``ERROR:  permission denied ...``)."""
    line = first_line(error)
    said = re.search(r"(?:ERROR|FATAL):\s+(.*)", line)
    return said.group(1).rstrip(" .") if said else line
