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
line in :data:`STORES`. Each is imported only when chosen: a store whose package is not
installed is an :class:`~batch_export.errors.InvalidInputError` that says what to install.

Example:

    >>> import tempfile
    >>> open_store(tempfile.mkdtemp())  # doctest: +ELLIPSIS
    DatasetStore('...')
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from batch_export.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

    from batch_export.job import JobStatus

__all__ = ["STORES", "TABLE_FORMATS", "JobLoad", "Store", "StoreState", "open_store"]

TABLE_FORMATS: tuple[str, ...] = ("parquet", "delta")

# The kind of a destination -> (module, class, what to install when the import fails).
STORES: dict[str, tuple[str, str, str]] = {
    "parquet": ("batch_export.sync.dataset", "DatasetStore", "batch-export"),
    "delta": ("batch_export.sync.stores.delta", "DeltaStore", "batch-export[delta]"),
    "duckdb": ("batch_export.sync.stores.duckdb", "DuckDBStore", "batch-export[duckdb]"),
    "postgresql": ("batch_export.sync.stores.postgres", "PostgresStore", "batch-export[postgres]"),
}
_DATABASE_SCHEMES = {
    "duckdb://": "duckdb",
    "postgresql://": "postgresql",
    "postgres://": "postgresql",
}


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


def open_store(
    dest: str | os.PathLike[str],
    *,
    table_format: str = "parquet",
    storage_options: Mapping[str, Any] | None = None,
    items_table: str = "items",
    jobs_table: str = "jobs",
) -> Store:
    """The store that ``dest`` and ``table_format`` name (see the table above).

    ``storage_options`` go to a folder store's file system; ``items_table`` and
    ``jobs_table`` name a database's tables.
    """
    url = os.fspath(dest)
    if table_format not in TABLE_FORMATS:
        raise InvalidInputError(
            f"--table-format must be one of {', '.join(TABLE_FORMATS)}, got {table_format!r}."
        )
    kind = next((k for s, k in _DATABASE_SCHEMES.items() if url.lower().startswith(s)), None)
    if kind is None:
        options: dict[str, Any] = {"storage_options": storage_options}
        if (items_table, jobs_table) != ("items", "jobs"):
            options.update(items_table=items_table, jobs_table=jobs_table)
        return _store_class(table_format, url)(url, **options)
    if table_format != "parquet":
        raise InvalidInputError(
            f"--table-format {table_format} applies to folder and object-store destinations, "
            f"not to {kind}:// (a database holds tables of its own)."
        )
    if storage_options:
        raise InvalidInputError(
            f"--storage-option and --endpoint-url apply to folder and object-store "
            f"destinations, not to {kind}://."
        )
    return _store_class(kind, url)(url, items_table=items_table, jobs_table=jobs_table)


def _store_class(kind: str, url: str) -> Callable[..., Store]:
    module_name, class_name, package = STORES[kind]
    try:
        store_class: Callable[..., Store] = getattr(
            importlib.import_module(module_name), class_name
        )
        return store_class
    except (ImportError, AttributeError) as error:
        missing = getattr(error, "name", None) or class_name
        raise InvalidInputError(
            f"--dest {url} needs the {kind} store, which is not available here ({missing} "
            f"cannot be imported): install {package}, or choose another destination."
        ) from None
