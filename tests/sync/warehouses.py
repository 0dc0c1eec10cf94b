"""The four kinds of sync destination, read back the same way for end-to-end checks.

A :class:`Warehouse` is one destination (a Parquet dataset folder, a folder of Delta tables,
a DuckDB file, a PostgreSQL schema) with what the promise tests ask of each:

- :meth:`Warehouse.items`: the items table as rows of the item schema, sorted by job and
  input index, ``extra`` parsed (PostgreSQL keeps it as ``jsonb`` and reformats it); the Delta
  and dataset ``date`` column aside;
- :meth:`Warehouse.jobs`: the jobs table without ``exported_at`` (which differs run to run);
- :meth:`Warehouse.committed`: what a reader following the jobs table sees, checked: each job
  in it once and whole, no item anywhere twice;
- :meth:`Warehouse.stamp`: something that changes whenever a row is written: the files'
  inodes and mtimes, the Delta versions and files, DuckDB row ids, PostgreSQL ``ctid`` and
  ``xmin``.
"""

from __future__ import annotations

import itertools
import os
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import adbc_driver_postgresql.dbapi as adbc_postgres
import duckdb
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.stores.postgres import JSON_COLUMNS
from batch_export.sync.stores.tables import STORE_JOBS_SCHEMA
from tests.postgres import PostgresServer
from tests.sync.readers import connect, items_table, jobs_table
from tests.sync.store_cases import items_sorted, with_json_parsed

KINDS = ("parquet", "delta", "duckdb", "postgresql")
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class Warehouse(ABC):
    """One destination of ``kind`` at ``dest`` (a path or a URL)."""

    kind: str
    dest: str

    def args(self) -> list[str]:
        """The `sync` options that name this destination."""
        table_format = "delta" if self.kind == "delta" else "parquet"
        return ["--dest", self.dest, "--table-format", table_format]

    def items(self) -> Rows:
        """Every item row, sorted, in the item schema, ``extra`` parsed."""
        return with_json_parsed(items_sorted(self.items_table()))

    def jobs(self) -> Rows:
        """Every jobs row without ``exported_at``, sorted by job id."""
        table = self.jobs_table()
        if "exported_at" in table.column_names:
            table = table.drop_columns(["exported_at"])
        rows: Rows = table.sort_by("job_id").to_pylist()
        return rows

    def committed(self) -> dict[str, int]:
        """The jobs a reader following the jobs table sees, with their rows; asserts that
        each is there once and whole, and that no item is anywhere twice."""
        items = self.items_table()
        pairs = zip(items["job_id"].to_pylist(), items["input_index"].to_pylist(), strict=True)
        keys = Counter(pairs)
        twice = [key for key, count in keys.items() if count > 1]
        assert not twice, f"{len(twice)} items are in the items table twice, e.g. {twice[0]}"
        per_job = Counter(job_id for job_id, _ in keys)
        jobs = self.jobs_table()
        if jobs.num_rows == 0:
            return {}
        job_ids = jobs["job_id"].to_pylist()
        assert len(job_ids) == len(set(job_ids)), "a job has two rows in the jobs table"
        committed = dict(zip(job_ids, jobs["rows"].to_pylist(), strict=True))
        for job_id, rows in committed.items():
            assert per_job[job_id] == rows, f"job {job_id}: {per_job[job_id]} items, {rows} due"
        return committed

    @abstractmethod
    def items_table(self) -> pa.Table:
        """The raw items table (columns of the item schema at least)."""

    @abstractmethod
    def jobs_table(self) -> pa.Table:
        """The raw jobs table."""

    @abstractmethod
    def stamp(self) -> Any:
        """A value that changes whenever a row of either table is written again."""

    def drop_jobs_columns(self, names: list[str]) -> None:
        """Make the jobs table one of an earlier version, without the columns ``names``."""
        raise NotImplementedError(f"the jobs files of a {self.kind} dataset keep one layout")


class ParquetWarehouse(Warehouse):
    """A hive-partitioned Parquet dataset, read with DuckDB as tests/sync/readers does."""

    def items_table(self) -> pa.Table:
        return items_table(self.dest, connect())

    def jobs_table(self) -> pa.Table:
        return jobs_table(self.dest, connect())

    def stamp(self) -> Any:
        files = sorted(path for path in Path(self.dest).rglob("*") if path.is_file())
        return [(str(path), path.stat().st_ino, path.stat().st_mtime_ns) for path in files]


class DeltaWarehouse(Warehouse):
    """The ``items`` and ``jobs`` Delta tables under a folder."""

    def table(self, name: str) -> DeltaTable:
        return DeltaTable(f"{self.dest}/{name}")

    def items_table(self) -> pa.Table:
        return self.table("items").to_pyarrow_table()

    def jobs_table(self) -> pa.Table:
        return self.table("jobs").to_pyarrow_table()

    def stamp(self) -> Any:
        tables = [self.table(name) for name in ("items", "jobs")]
        return [(table.version(), sorted(table.file_uris())) for table in tables]

    def drop_jobs_columns(self, names: list[str]) -> None:
        older = self.jobs_table().drop_columns(names)
        write_deltalake(f"{self.dest}/jobs", older, mode="overwrite", schema_mode="overwrite")


class DuckDBWarehouse(Warehouse):
    """The ``items`` and ``jobs`` tables of a DuckDB file."""

    def query(self, sql: str) -> pa.Table:
        # As a store of this process opens it (DuckDB refuses one file opened two ways).
        path = self.dest.removeprefix("duckdb://")
        with duckdb.connect(path) as con:
            return con.sql(sql).to_arrow_table()

    def items_table(self) -> pa.Table:
        return self.query("SELECT * FROM items")

    def jobs_table(self) -> pa.Table:
        return self.query("SELECT * FROM jobs")

    def stamp(self) -> Any:
        # A deleted and reinserted row comes back with a new rowid.
        return [
            self.query(f"SELECT rowid, job_id FROM {name} ORDER BY rowid").to_pylist()
            for name in ("items", "jobs")
        ]

    def drop_jobs_columns(self, names: list[str]) -> None:
        with duckdb.connect(self.dest.removeprefix("duckdb://")) as con:
            for name in names:
                con.execute(f'ALTER TABLE jobs DROP COLUMN "{name}"')


class PostgresWarehouse(Warehouse):
    """The ``items`` and ``jobs`` tables of a role's own schema, read through ADBC."""

    def query(self, sql: str) -> pa.Table:
        with adbc_postgres.connect(self.dest) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            table: pa.Table = cursor.fetch_arrow_table()
            return table

    def select(self, table: str, names: list[str]) -> pa.Table:
        columns = ", ".join(
            f'"{name}"::text AS "{name}"' if name in JSON_COLUMNS else f'"{name}"' for name in names
        )
        return self.query(f"SELECT {columns} FROM {table}")

    def items_table(self) -> pa.Table:
        return self.select("items", ITEM_SCHEMA.names)

    def jobs_table(self) -> pa.Table:
        return self.select("jobs", STORE_JOBS_SCHEMA.names)

    def stamp(self) -> Any:
        # An UPDATE or a DELETE and INSERT gives a row a new ctid and a new xmin.
        return [
            self.query(f"SELECT ctid::text, xmin::text FROM {name} ORDER BY 1, 2").to_pylist()
            for name in ("items", "jobs")
        ]

    def drop_jobs_columns(self, names: list[str]) -> None:
        with adbc_postgres.connect(self.dest) as conn, conn.cursor() as cursor:
            for name in names:
                cursor.execute(f'ALTER TABLE jobs DROP COLUMN "{name}"')
            conn.commit()


WAREHOUSES: dict[str, type[Warehouse]] = {
    "parquet": ParquetWarehouse,
    "delta": DeltaWarehouse,
    "duckdb": DuckDBWarehouse,
    "postgresql": PostgresWarehouse,
}


_roles = itertools.count()


def new_warehouse(kind: str, folder: Path, postgres: PostgresServer | None = None) -> Warehouse:
    """An empty destination of ``kind``: under ``folder``, or a new PostgreSQL role's schema
    (a database of its own, as far as the store can tell) on ``postgres``."""
    if kind == "postgresql":
        assert postgres is not None, "a PostgreSQL warehouse needs the test server"
        role = f"loader_{os.getpid()}_{next(_roles)}"
        postgres.psql(f"CREATE ROLE {role} LOGIN; CREATE SCHEMA {role} AUTHORIZATION {role}")
        return WAREHOUSES[kind](kind, postgres.url(user=role))
    if kind == "duckdb":
        return WAREHOUSES[kind](kind, f"duckdb://{folder}/warehouse.duckdb")
    return WAREHOUSES[kind](kind, str(folder / "warehouse"))
