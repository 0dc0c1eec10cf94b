"""What every table store shares: the jobs row it records, the spool, the evolution rule.

A table store (Delta Lake, DuckDB, PostgreSQL) holds two tables:

- ``items``: :data:`~batch_export.schema.ITEM_SCHEMA`, every item of every loaded job;
- ``jobs``: :data:`STORE_JOBS_SCHEMA`, one row per job: the sync's
  :data:`~batch_export.sync.layout.JOBS_SCHEMA` plus ``sync_token`` (the digest the next sync
  compares, see :func:`~batch_export.sync.layout.fingerprint_token`), ``fingerprint`` (the
  job's listed fields it was computed from, as JSON text), ``values_changed`` (values the
  tool changed so that the job loads, see :mod:`~batch_export.sync.stores.values`) and the
  counts of the load (:data:`COUNTED_FIELDS`, from :attr:`JobLoad.counts
  <batch_export.sync.store.JobLoad>`): ``failure_codes`` (JSON text: each failure code of the
  job's failed items with its items and whether resubmitting may help, see
  :class:`~batch_export.summary.failures.FailureTally`), ``failed_retryable`` (the failed items
  whose code says resubmitting may help) and ``api_key_hidden`` (runs of the API key written
  ``<hidden>``).

**Schema evolution**: the item schema carries ``SCHEMA_VERSION``; when the current schema has
a column that an existing table lacks, the table gains it, nullable, before the next load
(:func:`columns_to_add`); old rows read null there. A column the store has with another type
is a table of another shape, and an :class:`~batch_export.errors.OutputError`. Columns the
table has and the schema does not (added by hand, or by a later version) are left alone.

A job's batches are pulled from the API while they are loaded; a store that needs them more
than once (a commit retried) or wants the network out of its transaction spools them first
(:class:`Spool`, an Arrow IPC file read back memory-mapped: no job is held in memory).

Example:

    >>> columns_to_add("items", {"job_id": "text"}, {"job_id": "text", "extra": "jsonb"},
    ...                store="PostgreSQL")
    ['extra']
"""

from __future__ import annotations

import contextlib
import json
import mmap
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping

import pyarrow as pa

from batch_export.errors import InvalidInputError, OutputError
from batch_export.sync.layout import JOBS_SCHEMA, job_row
from batch_export.sync.store import JobLoad, StoreState
from batch_export.sync.stores.native import native_reason

__all__ = [
    "COUNTED_FIELDS",
    "STORE_JOBS_SCHEMA",
    "Spool",
    "columns_to_add",
    "first_line",
    "jobs_row",
    "quoted_identifier",
    "state_of",
]

# The jobs row's counts of a load, as JobLoad.counts gives them (a missing one is null).
COUNTED_FIELDS: tuple[pa.Field, ...] = (
    pa.field("failure_codes", pa.string()),
    pa.field("failed_retryable", pa.int64()),
    pa.field("api_key_hidden", pa.int64()),
)
STORE_JOBS_SCHEMA: pa.Schema = pa.schema(
    [
        *JOBS_SCHEMA,
        pa.field("sync_token", pa.string()),
        pa.field("fingerprint", pa.string()),
        pa.field("values_changed", pa.int64()),
        *COUNTED_FIELDS,
    ],
    metadata=JOBS_SCHEMA.metadata,
)

BatchMap = Callable[[pa.RecordBatch], pa.RecordBatch]


def jobs_row(load: JobLoad, *, rows: int, values_changed: int = 0) -> pa.Table:
    """The one-row table of :data:`STORE_JOBS_SCHEMA` that records ``load``.

    ``created_at`` falls back to the listing's when the job's own answer had none;
    ``values_changed`` counts the values the store itself changed, beside those the job's
    answers had changed (``load.values_changed``); the :data:`COUNTED_FIELDS` are
    ``load.counts()``'s.
    """
    fingerprint = json.dumps(dict(load.fingerprint), sort_keys=True, default=str)
    counts = load.counts()
    more = {
        "sync_token": load.token,
        "fingerprint": fingerprint,
        "values_changed": load.values_changed() + values_changed,
        **{field.name: counts.get(field.name) for field in COUNTED_FIELDS},
    }
    return job_row(
        load.job,
        rows=rows,
        exported_at=load.exported_at,
        tool_version=load.tool_version,
        created_at=load.created_at,
        schema=STORE_JOBS_SCHEMA,
        more=more,
    )


def state_of(pairs: Iterable[tuple[str, str | None]]) -> StoreState:
    """The :class:`StoreState` of a transactional store from its jobs table's
    ``(job_id, sync_token)`` pairs: every recorded job is whole.

    >>> state_of([("j1", "ab"), ("j2", None)]).recorded
    {'j1': {'ab'}, 'j2': set()}
    """
    recorded: dict[str, set[str]] = {}
    for job_id, token in pairs:
        tokens = recorded.setdefault(job_id, set())
        if token:
            tokens.add(token)
    return StoreState(recorded=recorded, whole=set(recorded))


def columns_to_add(
    table: str, existing: Mapping[str, str], wanted: Mapping[str, str], *, store: str
) -> list[str]:
    """The columns of ``wanted`` that ``existing`` lacks, in ``wanted``'s order.

    Both map a column name to the store's name of its type. A column both have with another
    type raises :class:`OutputError`: the table is of another shape, and loading into it
    would fail half way or, worse, convert.
    """
    for name, kind in wanted.items():
        if name in existing and existing[name].lower() != kind.lower():
            raise OutputError(
                f"{store} table {table} has column {name} of type {existing[name]}, expected "
                f"{kind}: it is not a table that batch-export made. Rename or drop it, or "
                "load into other tables."
            )
    return [name for name in wanted if name not in existing]


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def quoted_identifier(name: str, *, option: str) -> str:
    """A table name given by the user, checked and quoted for SQL.

    >>> quoted_identifier("scraper_items", option="items_table")
    '"scraper_items"'
    """
    if not _IDENTIFIER.fullmatch(name):
        raise InvalidInputError(
            f"{option} must be a plain table name (letters, digits and '_', not starting with "
            f"a digit, at most 63), got {name!r}."
        )
    return f'"{name}"'


def table_names(items_table: str, jobs_table: str) -> dict[str, tuple[str, str]]:
    """Each table's name and its quoted SQL identifier, checked, by role (items, jobs)."""
    return {
        "items": (items_table, quoted_identifier(items_table, option="items_table")),
        "jobs": (jobs_table, quoted_identifier(jobs_table, option="jobs_table")),
    }


def sql_type(kind: pa.DataType, names: dict[str, str]) -> str:
    """The SQL type of an Arrow type of the item or jobs schema, in a dialect's ``names``.

    ``names`` maps ``text``, ``bigint``, ``integer``, ``date``, ``timestamptz`` and
    ``timestamp`` to the dialect's spelling; a list is the element's type followed by ``[]``.

    >>> sql_type(pa.list_(pa.string()), {"text": "VARCHAR"})
    'VARCHAR[]'
    """
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return names["text"]
    if pa.types.is_list(kind):
        return f"{sql_type(kind.value_type, names)}[]"
    if pa.types.is_timestamp(kind):
        return names["timestamptz" if kind.tz else "timestamp"]
    simple = {pa.int64(): "bigint", pa.int32(): "integer", pa.date32(): "date"}
    if kind in simple:
        return names[simple[kind]]
    raise TypeError(f"no SQL type for Arrow {kind}")


def first_line(error: BaseException) -> str:
    """The first line of a driver's error, which alone says what went wrong."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0].rstrip(" .:")


@contextlib.contextmanager
def _spooling() -> Iterator[None]:
    """An OS error of the spool's file (a full temporary folder) as one sentence."""
    try:
        yield
    except OSError as error:
        raise OutputError(
            f"Cannot spool a job's rows in the temporary folder {tempfile.gettempdir()}: "
            f"{native_reason(error)}. Free space there (or point TMPDIR elsewhere), then rerun."
        ) from None


class Spool:
    """A job's batches written once to a temporary Arrow IPC file, read back as often as needed.

    ``rows`` counts what was spooled; :meth:`reader` gives a fresh reader of it, memory-mapped.
    The file has no name from the start (it is unlinked as it is made), so a sync killed
    while spooling leaves nothing behind. Use as a context manager: the file is released
    when the block ends.

    >>> from batch_export.schema import ITEM_SCHEMA
    >>> with Spool([], schema=ITEM_SCHEMA) as spool:
    ...     spool.rows, spool.reader().read_all().num_rows
    (0, 0)
    """

    def __init__(
        self,
        batches: Iterable[pa.RecordBatch],
        *,
        schema: pa.Schema,
        transform: BatchMap | None = None,
    ) -> None:
        # Closed in __exit__, or below if the spooling fails.
        with _spooling():
            self._file = tempfile.TemporaryFile(prefix="batch-export-spool-", suffix=".arrow")  # noqa: SIM115
        self.rows = 0
        try:
            self.schema = self._write(batches, schema, transform)
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except BaseException:
            self._file.close()
            raise

    def _write(
        self, batches: Iterable[pa.RecordBatch], schema: pa.Schema, transform: BatchMap | None
    ) -> pa.Schema:
        empty = pa.RecordBatch.from_pylist([], schema=schema)
        written: pa.Schema = (empty if transform is None else transform(empty)).schema
        # Buffered in pyarrow's memory: the IPC writer makes many small writes, each of which,
        # to a Python file, would take the GIL.
        sink = pa.BufferedOutputStream(pa.PythonFile(self._file, mode="w"), buffer_size=1 << 20)
        writer = pa.ipc.new_file(sink, written)
        closing = [writer.close, sink.detach]  # each once; detached, the file stays open
        try:
            for batch in batches:  # the batches' own errors (the API's) pass as they are
                # Cast, not trusted: rows must have the types the tables were made for.
                batch = batch.cast(schema)
                with _spooling():
                    writer.write_batch(batch if transform is None else transform(batch))
                self.rows += batch.num_rows
            with _spooling():
                while closing:
                    closing.pop(0)()
                self._file.flush()
        finally:
            # After a failure, closed here, quietly: pyarrow's destructors would print their
            # own failure to flush (an Arrow C++ line on stderr) long after ours was told.
            for close in closing:
                with contextlib.suppress(OSError, ValueError, pa.ArrowException):
                    close()
        return written

    def _opened(self) -> pa.ipc.RecordBatchFileReader:
        return pa.ipc.open_file(pa.BufferReader(pa.py_buffer(self._map)))

    def reader(self) -> pa.RecordBatchReader:
        """A new reader over every spooled batch, in order."""
        source = self._opened()
        return pa.RecordBatchReader.from_batches(
            source.schema, (source.get_batch(i) for i in range(source.num_record_batches))
        )

    def table(self) -> pa.Table:
        """Every spooled row as one table (memory-mapped, not copied)."""
        return self._opened().read_all()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()
        # Arrow buffers still in use keep the mapping alive; it goes with the last of them.
        with contextlib.suppress(BufferError):
            self._map.close()
