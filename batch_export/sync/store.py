"""Where a sync puts its jobs: one interface, one store per kind of destination.

A :class:`Store` holds the ``items`` and ``jobs`` tables of an account. The sync loop
(:mod:`batch_export.sync.run`) asks it what it holds (:meth:`Store.scan`), lets it clean up
what an interrupted run left (:meth:`Store.prepare`), then hands it each finished job as a
:class:`JobLoad` with the job's record batches (:meth:`Store.load`), and at the end keeps
the sync's watermark (:meth:`Store.save_watermark`), which the next scan returns. A load is
all or nothing: after it, the store holds the job's new rows and its jobs row, and none of
its old ones; after a failure or a kill, it holds the job as it was before, or (for the
folder store, whose readers trust the jobs table) nothing that a reader trusts.

:func:`open_store` chooses the store from ``--dest`` and ``--table-format``:

=============================================  ==========================================
``--dest``                                     store
=============================================  ==========================================
a folder or fsspec URL (``s3://b/p``)          Parquet dataset (``--table-format parquet``)
the same, with ``--table-format delta``        Delta Lake tables
``duckdb:///path/to/file.duckdb``              DuckDB database file
``postgresql://user@host:port/db``             PostgreSQL database
=============================================  ==========================================

Every store lives in :mod:`batch_export.sync.stores`. A new kind of destination is one module
there with a class that follows :class:`Store` (inheriting :class:`Closing`), one line in
:data:`STORES`, and one entry in the store contract test (``tests/sync/test_store_contract.py``),
which runs over :data:`STORES`. Each is imported only when chosen: a store whose package is not
installed is an :class:`~batch_export.errors.InvalidInputError` that says what to install.

Example:

    >>> import tempfile
    >>> with open_store(tempfile.mkdtemp()) as store:
    ...     store  # doctest: +ELLIPSIS
    DatasetStore('...')
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, Self

from batch_export.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

    from batch_export.job import JobStatus

__all__ = [
    "ITEMS_TABLE",
    "JOBS_TABLE",
    "STORES",
    "TABLE_FORMATS",
    "Closing",
    "JobLoad",
    "Loaded",
    "Store",
    "StoreState",
    "open_store",
]

TABLE_FORMATS: tuple[str, ...] = ("parquet", "delta")
# The tables' names unless --items-table / --jobs-table say otherwise (the Parquet dataset's
# folders have these names, fixed by its layout).
ITEMS_TABLE = "items"
JOBS_TABLE = "jobs"

# The kind of a destination -> (module, class, what to install when the import fails).
STORES: dict[str, tuple[str, str, str]] = {
    "parquet": ("batch_export.sync.stores.dataset", "DatasetStore", "batch-export"),
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
    """What a store holds: the tokens recorded for each job, which jobs are whole, and the
    sync's watermark.

    ``recorded`` maps a job id to the tokens of its recorded loads (one; none when the job
    was never loaded; more only after hand edits). ``whole`` holds the ids of jobs whose
    rows and jobs row are both there. A transactional store has ``whole == set(recorded)``.
    ``watermark`` is the document last given to :meth:`Store.save_watermark` (None: none
    yet); the store keeps it as text and never reads it (see
    :mod:`batch_export.sync.watermark`).
    """

    recorded: Mapping[str, set[str]] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)
    watermark: str | None = None


@dataclass(frozen=True, kw_only=True)
class JobLoad:
    """One finished job on its way into a store, with what the store records of it.

    ``token`` is the digest of the job as the account's listing showed it (what the next
    sync compares to decide whether the job changed); ``created_at`` places the job in its
    date partition; ``values_changed``, called once the batches are consumed, counts the
    values of the job's answers that were changed on the way (a store adds those it changes
    itself, see :mod:`~batch_export.sync.stores.values`); ``counts``, called then too, gives
    what the job's row records of its load besides: ``failure_codes`` (JSON text or None),
    ``failed_retryable`` and ``api_key_hidden`` (see
    :data:`~batch_export.sync.stores.tables.STORE_JOBS_SCHEMA`).
    """

    job: JobStatus
    token: str
    fingerprint: Mapping[str, Any]
    created_at: datetime
    exported_at: datetime
    tool_version: str
    values_changed: Callable[[], int] = field(default=lambda: 0, repr=False)
    counts: Callable[[], Mapping[str, Any]] = field(default=lambda: {}, repr=False)


@dataclass(frozen=True, kw_only=True)
class Loaded:
    """What a store did with one job, as the sync reports it (``job_exported``, the summary).

    ``rows`` were loaded; ``items_path`` is where the job's items are, for a store of files
    (relative to its root); ``values_changed`` counts the job's values changed on the way so
    that the destination holds them (see :mod:`~batch_export.sync.stores.values`), as its jobs
    row records them.

    >>> Loaded(rows=3).fields(), Loaded(rows=3, values_changed=1).fields()
    ({'rows': 3}, {'rows': 3, 'values_changed': 1})
    """

    rows: int
    items_path: str | None = None
    values_changed: int = 0

    def fields(self) -> dict[str, Any]:
        """The fields of the ``job_exported`` event: nothing that is not there or zero."""
        fields: dict[str, Any] = {"rows": self.rows}
        if self.items_path is not None:
            fields["items_path"] = self.items_path
        if self.values_changed:
            fields["values_changed"] = self.values_changed
        return fields


class Store(Protocol):
    """A destination of a sync. Methods may be called from several threads at once.

    A store is a context manager: leaving the block closes it (its connections, its lock).
    """

    url: str

    def scan(self) -> StoreState:
        """What the store holds now."""

    def prepare(self) -> int:
        """Make the store ready to be loaded, taking what a writer needs (a lock, tables),
        and remove what an interrupted sync left half-done; return how many things removed.
        Raises :class:`~batch_export.errors.OutputError`, in one sentence, when another
        sync holds a store that takes one writer at a time."""

    def load(self, load: JobLoad, batches: Iterable[pa.RecordBatch]) -> Loaded:
        """Replace everything held of ``load.job`` by ``batches`` and its jobs row, all or
        nothing; return what was done. Raises :class:`~batch_export.errors.OutputError`
        when the store refuses."""

    def save_watermark(self, document: str) -> None:
        """Keep ``document`` (JSON text, small) in place of the watermark held, in one step:
        the next :meth:`scan` gives it back whole. Raises
        :class:`~batch_export.errors.OutputError` when the store refuses."""

    def close(self) -> None:
        """Release connections, files and locks; a closed store may be used again."""

    def __enter__(self) -> Self:
        """The store itself."""

    def __exit__(self, *exc_info: object) -> None:
        """Close the store."""


class Closing:
    """What makes a store a context manager that closes itself; stores inherit it."""

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_store(
    dest: str | os.PathLike[str],
    *,
    table_format: str = "parquet",
    storage_options: Mapping[str, Any] | None = None,
    items_table: str = ITEMS_TABLE,
    jobs_table: str = JOBS_TABLE,
) -> Store:
    """The store that ``dest`` and ``table_format`` name (see the table above).

    ``storage_options`` go to a folder store's file system; ``items_table`` and
    ``jobs_table`` name a database's tables. The store is not touched yet (nothing read,
    created or locked); use it in a ``with`` block, or close it.
    """
    url = os.fspath(dest)
    if table_format not in TABLE_FORMATS:
        raise InvalidInputError(
            f"--table-format must be one of {', '.join(TABLE_FORMATS)}, got {table_format!r}."
        )
    kind = next((k for s, k in _DATABASE_SCHEMES.items() if url.lower().startswith(s)), None)
    if kind is None:
        options: dict[str, Any] = {"storage_options": storage_options}
        if (items_table, jobs_table) != (ITEMS_TABLE, JOBS_TABLE):
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
