"""Where a sync puts its jobs: one interface, one store per kind of destination.

A :class:`Store` holds the ``items`` and ``jobs`` tables of an account. The sync loop
(:mod:`batch_export.sync.run`) asks it what it holds (:meth:`Store.scan`), lets it clean up
what an interrupted run left (:meth:`Store.prepare`), then hands it each finished job as a
:class:`JobLoad` with the job's record batches (:meth:`Store.load`). A load is all or
nothing: after it, the store holds the job's new rows and its jobs row, and none of its old
ones; after a failure or a kill, it holds the job as it was before, or (for the folder
store, whose readers trust the jobs table) nothing that a reader trusts.

:func:`open_store` chooses the store from ``--dest`` and ``--table-format``:

=============================================  ==========================================
``--dest``                                     store
=============================================  ==========================================
a folder or fsspec URL (``s3://b/p``)          Parquet dataset (``--table-format parquet``)
the same, with ``--table-format delta``        Delta Lake tables
``duckdb:///path/to/file.duckdb``              DuckDB database file
``postgresql://user@host:port/db``             PostgreSQL database
=============================================  ==========================================

A new kind of destination is one module with a class that follows :class:`Store`, and one
line in :func:`open_store`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

    from batch_export.job import JobStatus

__all__ = ["JobLoad", "Store", "StoreState"]


@dataclass(frozen=True, kw_only=True)
class StoreState:
    """What a store holds: the tokens recorded for each job, and which jobs are whole.

    ``recorded`` maps a job id to the tokens of its recorded loads (one; none when the job
    was never loaded; more only after hand edits). ``whole`` holds the ids of jobs whose
    rows and jobs row are both there. A transactional store has ``whole == set(recorded)``.
    """

    recorded: Mapping[str, set[str]] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)


@dataclass(frozen=True, kw_only=True)
class JobLoad:
    """One finished job on its way into a store, with what the store records of it.

    ``token`` is the digest of the job as the account's listing showed it (what the next
    sync compares to decide whether the job changed); ``created_at`` places the job in its
    date partition.
    """

    job: JobStatus
    token: str
    fingerprint: Mapping[str, Any]
    created_at: datetime
    exported_at: datetime
    tool_version: str


class Store(Protocol):
    """A destination of a sync. Methods may be called from several threads at once."""

    url: str

    def scan(self) -> StoreState:
        """What the store holds now."""

    def prepare(self) -> int:
        """Remove what an interrupted sync left half-done; return how many things removed."""

    def load(self, load: JobLoad, batches: Iterable[pa.RecordBatch]) -> int:
        """Replace everything held of ``load.job`` by ``batches`` and its jobs row, all or
        nothing; return the number of rows loaded. Raises
        :class:`~batch_export.errors.OutputError` when the store refuses."""

    def close(self) -> None:
        """Release connections and files."""
