"""A PostgreSQL database: tables ``items`` and ``jobs``, loaded through ADBC (COPY).

``postgresql://user@host:port/database`` names the database; the password comes from
``PGPASSWORD`` or ``~/.pgpass`` (libpq reads them), never from the URL, which shows in
``ps`` and in logs. Tables are created when missing, with types that keep the schema:
``bigint``, ``integer``, ``text``, ``text[]`` for ``links``, ``jsonb`` for ``extra`` (and the
jobs table's ``config``, ``fingerprint`` and ``failure_codes``), ``timestamp with time zone``.

Each job is one transaction on a connection of the store's own: the job's rows deleted, the
new ones copied (``cursor.adbc_ingest``, PostgreSQL's binary COPY) into a temporary staging
table and inserted from there with casts (text to ``jsonb``), then its jobs row replaced the
same way. Loads from several threads each take a connection of their own.

**Several writers at once** (two syncs, an Airflow retry while the first attempt runs) stay
exact: each load first takes a transaction-long advisory lock on its job
(``pg_advisory_xact_lock``), so two loads of one job run one after the other, the second
replacing the first; and ``items`` has a unique key on ``(job_id, input_index)``, so the
database itself refuses an item twice. Tables made before the key gain it on the next sync,
unless they already hold an item twice (then one sentence says how to clear them).

**Values it cannot hold**: ``text`` and ``jsonb`` take no NUL, ``jsonb`` no lone surrogate
escape; the rule of :mod:`~batch_export.sync.stores.values` changes them, and the jobs row
counts them (``values_changed``). A value the server still refuses fails its job with one
sentence that names the column.

Example:

    >>> with PostgresStore("postgresql://loader@db.internal:5432/warehouse") as store:
    ...     store.prepare()  # doctest: +SKIP
    0
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import adbc_driver_manager
import adbc_driver_postgresql.dbapi as adbc_postgres
import pyarrow as pa

from batch_export.errors import InvalidInputError, OutputError
from batch_export.sync.store import ITEMS_TABLE, JOBS_TABLE, JobLoad, Loaded
from batch_export.sync.stores.native import is_disk_full
from batch_export.sync.stores.sql import SqlStore
from batch_export.sync.stores.tables import first_line, quoted_identifier

__all__ = ["JSON_COLUMNS", "SCHEMES", "PostgresStore", "check_url", "postgres_type"]

SCHEMES = ("postgresql://", "postgres://")
JSON_COLUMNS = frozenset({"extra", "config", "fingerprint", "failure_codes"})
_STAGE = "batch_export_stage"
_DISK_FULL = "53100"
# A lock held until the transaction ends, on a 64-bit hash of what it guards.
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
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
    return PostgresStore.column_type(name, kind)


class PostgresStore(SqlStore):
    """The ``items`` and ``jobs`` tables (names configurable) of one PostgreSQL database."""

    dialect = "PostgreSQL"
    types: ClassVar[dict[str, str]] = {
        "text": "text",
        "bigint": "bigint",
        "integer": "integer",
        "date": "date",
        "timestamptz": "timestamp with time zone",
        "timestamp": "timestamp without time zone",
    }
    marks = ("$1", "$2")
    json_columns = JSON_COLUMNS
    holds_every_value = False  # no NUL in text or jsonb

    def __init__(
        self, url: str, *, items_table: str = ITEMS_TABLE, jobs_table: str = JOBS_TABLE
    ) -> None:
        super().__init__(check_url(url), items_table=items_table, jobs_table=jobs_table)
        self._idle: list[_Connection] = []
        self._idle_lock = threading.Lock()

    @classmethod
    def column_type(cls, name: str, kind: pa.DataType) -> str:
        """``jsonb`` for the columns that hold JSON, else the type of :attr:`types`."""
        return "jsonb" if name in cls.json_columns else super().column_type(name, kind)

    def load(self, load: JobLoad, batches: Iterable[pa.RecordBatch]) -> Loaded:
        """Replace the job's rows and its jobs row in one transaction (see above)."""
        try:
            return super().load(load, batches)
        except _Refused as refused:
            column = refused.column or self._refused_column(refused)
            raise OutputError(
                f"PostgreSQL cannot hold a value of job {load.job.job_id} in "
                f"{f'column {column} of table' if column else 'table'} "
                f"{self._tables[refused.table][0]} ({_reason(refused.error, detail=True)}), so "
                "the job was not loaded: see the README's table of what each destination holds."
            ) from None

    def close(self) -> None:
        """Close the idle connections."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _replace(self, cursor: Any, table: str, job_id: str, data: pa.Table) -> None:
        quoted = self._tables[table][1]
        cursor.execute(f"DELETE FROM {quoted} WHERE job_id = $1", parameters=(job_id,))
        try:
            cursor.adbc_ingest(_STAGE, data, mode="create", temporary=True)
        except adbc_driver_manager.Error as error:
            if not _refuses_a_value(error):
                raise
            # COPY says which column: "CONTEXT:  COPY batch_export_stage, line 3, column url".
            named = re.search(r"COPY \S+, line \d+, column (\w+)", str(error))
            raise _Refused(table, error, named.group(1) if named else None, data) from None
        names = ", ".join(f'"{column}"' for column in self._columns[table])
        casts = ", ".join(
            f'CAST("{column}" AS {kind})' for column, kind in self._columns[table].items()
        )
        try:
            cursor.execute(f"INSERT INTO {quoted} ({names}) SELECT {casts} FROM {_STAGE}")
        except adbc_driver_manager.Error as error:
            if not _refuses_a_value(error):
                raise
            raise _Refused(table, error, None, data) from None
        cursor.execute(f"DROP TABLE {_STAGE}")

    def _refused_column(self, refused: _Refused) -> str | None:
        """Which ``jsonb`` column PostgreSQL could not cast to: the items' only one, or the
        jobs row's that fails when tried alone (each in a transaction of its own)."""
        columns: list[str] = [
            c for c, kind in self._columns[refused.table].items() if kind == "jsonb"
        ]
        if len(columns) == 1 or refused.table != "jobs":
            return columns[0] if len(columns) == 1 else None
        conn = adbc_postgres.connect(self.url, autocommit=False)
        try:
            with conn.cursor() as cursor:
                for column in columns:
                    try:
                        cursor.execute(
                            "SELECT CAST($1::text AS jsonb) IS NULL",
                            parameters=(refused.data.column(column)[0].as_py(),),
                        )
                        cursor.fetchall()
                    except adbc_driver_manager.Error:
                        return column
                    finally:
                        conn.rollback()
        finally:
            conn.close()
        return None

    def _create_table(self, cursor: Any, table: str) -> None:
        """The jobs table keyed by ``job_id``; the items' key comes in ``_after_tables``."""
        key = " PRIMARY KEY" if table == "jobs" else ""
        columns = ", ".join(
            f'"{column}" {kind}{key if column == "job_id" else ""}'
            for column, kind in self._columns[table].items()
        )
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {self._tables[table][1]} ({columns})")

    def _after_tables(self, cursor: Any) -> None:
        """The unique key on ``(job_id, input_index)``: the database itself refuses an item
        twice (and finds a job's rows by it). Tables made before it had the key gain it,
        unless they hold duplicates."""
        name, quoted = self._tables["items"]
        key = quoted_identifier(f"{name}_job_id_input_index"[:63], option="items_table")
        try:
            cursor.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {key} ON {quoted} (job_id, input_index)"
            )
        except adbc_driver_manager.IntegrityError:
            raise OutputError(
                f"PostgreSQL table {name} at {self.url} holds some items twice (the same "
                "job_id and input_index, left by two syncs at once before batch-export kept "
                "them apart), so it cannot gain the unique key that keeps them apart: delete "
                f"those jobs' rows from {name} and {self._tables['jobs'][0]} (SELECT DISTINCT "
                f"job_id FROM {name} GROUP BY job_id, input_index HAVING count(*) > 1 finds "
                "them) and rerun, which loads them again."
            ) from None

    def _hold(self, cursor: Any, what: str) -> None:
        """The transaction-long advisory lock on ``what`` of these tables: a second sync's
        transaction on the same thing waits until this one commits or rolls back."""
        key = f"batch_export:{self._tables['jobs'][1]}:{what}"
        cursor.execute(_LOCK, parameters=(key,))
        cursor.fetchall()

    def _existing_columns(self, cursor: Any, name: str, quoted: str) -> dict[str, str]:
        cursor.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum",
            parameters=(quoted,),
        )
        return {str(column): str(kind) for column, kind in cursor.fetchall()}

    def _query(self, cursor: Any, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        cursor.execute(sql, parameters=tuple(parameters) or None)
        rows: list[Any] = cursor.fetchall()
        return rows

    def _execute(self, cursor: Any, sql: str, parameters: Sequence[Any] = ()) -> None:
        cursor.execute(sql, parameters=tuple(parameters) or None)

    @contextmanager
    def _transaction(self, con: _Connection) -> Iterator[Any]:
        with con.cursor() as cursor:
            yield cursor
        con.commit()

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
            raise self._failed(action, table, error) from None
        except BaseException:
            if conn is not None:
                with contextlib.suppress(adbc_driver_manager.Error):
                    conn.rollback()
            raise
        finally:
            if conn is not None:
                with self._idle_lock:
                    self._idle.append(conn)

    def _failed(self, action: str, table: str, error: BaseException) -> OutputError:
        where = f"PostgreSQL could not {action} table {self._tables[table][0]} at {self.url}"
        if getattr(error, "sqlstate", None) == _DISK_FULL or is_disk_full(error):
            return OutputError(
                f"{where}: the database server's disk is full ({_reason(error)}). Free space "
                "there, then rerun."
            )
        return OutputError(
            f"{where}: {_reason(error)}. Check the server and the role's privileges (the "
            "password comes from PGPASSWORD or ~/.pgpass)."
        )

    def _take(self) -> _Connection:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        return adbc_postgres.connect(self.url, autocommit=False)


def _reason(error: BaseException, *, detail: bool = False) -> str:
    """The server's own words when there are some (``ERROR:  permission denied ...``), with
    its ``DETAIL`` line when asked."""
    line = first_line(error)
    said = re.search(r"(?:ERROR|FATAL):\s+(.*)", line)
    reason = said.group(1).rstrip(" .") if said else line
    more = re.search(r"^DETAIL:\s+(.*)$", str(error), re.MULTILINE) if detail else None
    return f"{reason}: {more.group(1).rstrip(' .')}" if more else reason


def _refuses_a_value(error: BaseException) -> bool:
    """Whether the server refused a value (a data exception, SQLSTATE class 22), not the
    statement: the value's column is then worth naming."""
    return str(getattr(error, "sqlstate", "") or "").startswith("22")


class _Refused(Exception):
    """PostgreSQL refused a value of ``table`` (in ``column``, when its message says)."""

    def __init__(
        self, table: str, error: BaseException, column: str | None, data: pa.Table
    ) -> None:
        super().__init__(table)
        self.table = table
        self.error = error
        self.column = column
        self.data = data
