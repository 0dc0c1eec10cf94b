"""How the tests read a synced dataset: as a warehouse would, with DuckDB and hive partitions.

:func:`reader_view` reads a dataset once and checks what a reader following the documented
rule sees (the jobs table, joined to the items of the same job): every job in it whole, none
twice. It also checks what a careless reader of the bare item files sees: never half a job,
never an item twice. DuckDB does the reading and the counting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import fsspec
import pyarrow as pa

ITEMS_GLOB = "items/*/*.parquet"
JOBS_GLOB = "jobs/*/*.parquet"


def connect(fs: Any = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection; with ``fs`` (s3fs), able to read ``s3://`` through it."""
    con = duckdb.connect()
    if fs is not None:
        con.register_filesystem(fs)
    return con


def _has_files(root: str, pattern: str, fs: Any) -> bool:
    filesystem, path = (fs, root.split("://", 1)[-1]) if fs else fsspec.core.url_to_fs(root)
    filesystem.invalidate_cache()
    return bool(filesystem.glob(f"{path}/{pattern}"))


def items_table(root: str, con: duckdb.DuckDBPyConnection, fs: Any = None) -> pa.Table:
    """Every item file under ``root`` as one table, with the hive ``date`` column."""
    if not _has_files(root, ITEMS_GLOB, fs):
        return pa.table({"job_id": pa.array([], pa.string())})
    query = (
        f"SELECT * FROM read_parquet('{root}/{ITEMS_GLOB}', hive_partitioning = true) "
        "ORDER BY job_id, input_index"
    )
    return con.sql(query).to_arrow_table()


def jobs_table(root: str, con: duckdb.DuckDBPyConnection, fs: Any = None) -> pa.Table:
    """The jobs table under ``root``, without the export time (which differs run to run)."""
    if not _has_files(root, JOBS_GLOB, fs):
        return pa.table({"job_id": pa.array([], pa.string())})
    query = (
        f"SELECT * EXCLUDE (exported_at) FROM read_parquet('{root}/{JOBS_GLOB}', "
        "hive_partitioning = true) ORDER BY job_id"
    )
    return con.sql(query).to_arrow_table()


@dataclass
class View:
    """What readers see of a dataset: both tables, and the committed jobs with their items."""

    items: pa.Table
    jobs: pa.Table
    committed: dict[str, int]


def reader_view(
    root: str, expected: Mapping[str, int], con: duckdb.DuckDBPyConnection, fs: Any = None
) -> View:
    """Read the dataset once and check what readers see of it now.

    ``expected`` maps each job id to its item count by the job's counters.
    """
    items = items_table(root, con, fs)
    jobs = jobs_table(root, con, fs)
    per_job = _counts(items, con)
    # A careless reader of items/ alone: each job there is whole, and no item comes twice.
    for job_id, (count, distinct) in per_job.items():
        assert count == distinct, f"job {job_id}: an input_index appears twice in items/"
        assert count == expected[job_id], f"job {job_id}: {count} items, {expected[job_id]} due"
    # A reader following the rule: jobs in the jobs table, each once, whole, its row exact.
    job_ids = jobs.column("job_id").to_pylist()
    assert len(job_ids) == len(set(job_ids)), "a job has two rows in the jobs table"
    committed: dict[str, int] = {}
    for row in jobs.to_pylist():
        job_id = row["job_id"]
        count = per_job.get(job_id, (0, 0))[0]
        assert count == row["rows"] == expected[job_id], f"job {job_id} is not whole"
        committed[job_id] = count
    return View(items, jobs, committed)


def _counts(items: pa.Table, con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    """DuckDB's count of items, and of distinct input indexes, by job."""
    if items.num_rows == 0:
        return {}
    grouped = con.from_arrow(items).aggregate(
        "job_id, count(*) AS n, count(DISTINCT input_index) AS distinct_n", "job_id"
    )
    return {job_id: (n, distinct) for job_id, n, distinct in grouped.fetchall()}
