"""Delta Lake tables: ``DEST/items`` (partitioned by ``date``) and ``DEST/jobs``, via deltalake.

``items`` holds :data:`~batch_export.schema.ITEM_SCHEMA` plus ``date`` (the UTC day of the
job's ``created_at``, a real column of the table that it is partitioned by, as the Parquet
dataset's ``items/date=D/``); ``jobs`` holds one row per job
(:data:`~batch_export.sync.stores.tables.STORE_JOBS_SCHEMA`). Each load is two commits:

1. ``items``: the job's old rows deleted and its new rows added, in **one** commit
   (``write_deltalake(mode="overwrite", predicate="job_id = '...'")``);
2. ``jobs``: the job's row replaced the same way, **after** its items.

So a reader that follows ``jobs`` never sees a job without its items. A kill between the two
commits leaves the job's new items without (or with its old) jobs row; the next sync finds the
job's token missing or stale, and loads it again, replacing those rows.

More than one writer (two syncs, two machines) may load into one table: a commit that
conflicts with a concurrent one is retried, up to ``max_attempts`` times with backoff. On a
local or mounted file system delta-rs commits with an atomic rename; on S3 with a conditional
write (``If-None-Match``), which AWS S3 and recent MinIO and R2 honour. A store without
conditional writes needs one writer at a time and ``AWS_S3_ALLOW_UNSAFE_RENAME=true``.

:func:`compact` rewrites small files into large ones (``OPTIMIZE``) and, given an age in
hours, deletes files that no version younger than that needs (``VACUUM``).

Example:

    >>> import tempfile
    >>> with DeltaStore(tempfile.mkdtemp()) as store:
    ...     store.prepare(), store.scan().recorded
    (0, {})
"""

from __future__ import annotations

import functools
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date
from pathlib import Path
from typing import Any

import deltalake
import pyarrow as pa
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from batch_export.errors import InvalidInputError, OutputError
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.layout import LAYOUT_FILE
from batch_export.sync.store import ITEMS_TABLE, JOBS_TABLE, Closing, JobLoad, Loaded, StoreState
from batch_export.sync.stores.native import native_condition, native_reason
from batch_export.sync.stores.tables import (
    STORE_JOBS_SCHEMA,
    Spool,
    columns_to_add,
    jobs_row,
    quoted_identifier,
    state_of,
)
from batch_export.sync.watermark import WATERMARK_TABLE

__all__ = ["DELTA_ITEM_SCHEMA", "DeltaStore", "compact", "delta_storage_options"]

# The tables' roles (their names are the store's ``items_table``, ``jobs_table``).
ITEMS = "items"
JOBS = "jobs"
WATERMARK = "watermark"
DELTA_ITEM_SCHEMA: pa.Schema = pa.schema(
    [*ITEM_SCHEMA, pa.field("date", pa.date32())], metadata=ITEM_SCHEMA.metadata
)
_PARTITIONS = {ITEMS: ["date"], JOBS: None}
_SCHEMAS = {ITEMS: DELTA_ITEM_SCHEMA, JOBS: STORE_JOBS_SCHEMA}

# fsspec's (s3fs) names of the options the sync's --endpoint-url and --storage-option give,
# as delta-rs (object_store) calls them.
_FSSPEC_NAMES = {
    "endpoint_url": "AWS_ENDPOINT_URL",
    "key": "AWS_ACCESS_KEY_ID",
    "secret": "AWS_SECRET_ACCESS_KEY",
    "token": "AWS_SESSION_TOKEN",
    "region_name": "AWS_REGION",
}
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0
_DRIVER_ERRORS = (DeltaError, OSError, pa.ArrowException)


def delta_storage_options(options: Mapping[str, Any] | None) -> dict[str, str]:
    """The sync's storage options as delta-rs takes them: its names, text values.

    An ``http://`` endpoint (a local MinIO or moto) also needs ``AWS_ALLOW_HTTP``.

    >>> delta_storage_options({"endpoint_url": "http://127.0.0.1:9000", "anon": False})
    {'AWS_ENDPOINT_URL': 'http://127.0.0.1:9000', 'anon': 'false', 'AWS_ALLOW_HTTP': 'true'}
    """
    converted: dict[str, str] = {}
    for key, value in (options or {}).items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        converted[_FSSPEC_NAMES.get(key, key)] = text
    endpoint = converted.get("AWS_ENDPOINT_URL", "")
    if endpoint.startswith("http://"):
        converted.setdefault("AWS_ALLOW_HTTP", "true")
    return converted


class DeltaStore(Closing):
    """The ``items`` and ``jobs`` Delta tables under ``url`` (a folder or an ``s3://`` URL).

    ``storage_options`` reach delta-rs (see :func:`delta_storage_options`); ``max_attempts``
    bounds the commits of one table tried against concurrent writers; ``items_table`` and
    ``jobs_table`` name the tables' folders under ``url``.
    """

    def __init__(
        self,
        url: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        items_table: str = ITEMS_TABLE,
        jobs_table: str = JOBS_TABLE,
        max_attempts: int = 8,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/") or url
        self._options = delta_storage_options(storage_options)
        self._names = {
            ITEMS: _table_name(items_table, option="items_table"),
            JOBS: _table_name(jobs_table, option="jobs_table"),
            WATERMARK: WATERMARK_TABLE,
        }
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._lock = threading.Lock()
        self._ready = False

    def uri(self, table: str) -> str:
        """Where one of the tables (``"items"`` or ``"jobs"``) is."""
        return f"{self.url}/{self._names[table]}"

    def scan(self) -> StoreState:
        """The tokens of the jobs table; every recorded job is whole (commits are atomic)."""
        table = self._open(JOBS)
        if table is None:
            return StoreState()
        try:
            rows = table.to_pyarrow_table(columns=["job_id", "sync_token"])
        except BaseException as error:  # a Rust panic is a BaseException
            if not _is_driver_error(error):
                raise
            raise self._refused(JOBS, error) from None
        state = state_of(zip(*(rows.column(n).to_pylist() for n in rows.column_names), strict=True))
        return replace(state, watermark=self._watermark())

    def prepare(self) -> int:
        """Create the tables, or add the columns a newer item schema has; nothing to remove."""
        self._ensure()
        return 0

    def load(self, load: JobLoad, batches: Iterable[pa.RecordBatch]) -> Loaded:
        """Replace the job's rows (one commit), then its jobs row (one commit)."""
        self._ensure()
        day = date.fromisoformat(load.created_at.astimezone(UTC).date().isoformat())
        predicate = f"job_id = {_quoted(load.job.job_id)}"
        with Spool(batches, schema=ITEM_SCHEMA, transform=_with_date(day)) as spool:
            self._commit(ITEMS, lambda: self._write(ITEMS, spool.reader(), predicate))
            row = jobs_row(load, rows=spool.rows)
            self._commit(JOBS, lambda: self._write(JOBS, row, predicate))
            changed = row.column("values_changed")[0].as_py()
            return Loaded(rows=spool.rows, values_changed=changed)

    def save_watermark(self, document: str) -> None:
        """Keep the sync's watermark: the jobs table's row of the Delta table
        ``DEST/batch_export_watermark``, replaced in one commit."""
        row = pa.table({"jobs_table": [self._names[JOBS]], "watermark": [document]})
        predicate = f"jobs_table = {_quoted(self._names[JOBS])}"
        self._commit(
            WATERMARK,
            lambda: deltalake.write_deltalake(
                self.uri(WATERMARK),
                row,
                mode="overwrite",
                predicate=predicate,
                storage_options=self._options,
            ),
        )

    def close(self) -> None:
        """Nothing held between calls: each commit opens the table afresh."""

    def _write(self, table: str, data: pa.RecordBatchReader | pa.Table, predicate: str) -> None:
        deltalake.write_deltalake(
            self.uri(table),
            data,
            mode="overwrite",
            predicate=predicate,
            partition_by=_PARTITIONS[table],
            storage_options=self._options,
        )

    def _watermark(self) -> str | None:
        table = self._open(WATERMARK)
        if table is None:
            return None
        try:
            rows = table.to_pyarrow_table(columns=["jobs_table", "watermark"]).to_pylist()
        except _DRIVER_ERRORS as error:
            raise self._refused(WATERMARK, error) from None
        return next((r["watermark"] for r in rows if r["jobs_table"] == self._names[JOBS]), None)

    def _open(self, table: str) -> deltalake.DeltaTable | None:
        try:
            return deltalake.DeltaTable(self.uri(table), storage_options=self._options)
        except TableNotFoundError:
            return None
        except _DRIVER_ERRORS as error:
            raise self._refused(table, error) from None

    def _ensure(self) -> None:
        with self._lock:
            if self._ready:
                return
            self._check_not_a_parquet_dataset()
            for table in (ITEMS, JOBS):
                # A concurrent writer may create or widen the table first: then look again.
                self._commit(table, functools.partial(self._ensure_table, table))
            self._ready = True

    def _ensure_table(self, table: str) -> None:
        schema = _SCHEMAS[table]
        existing = self._open(table)
        if existing is None:
            try:
                deltalake.DeltaTable.create(
                    self.uri(table),
                    schema,
                    partition_by=_PARTITIONS[table],
                    mode="ignore",
                    storage_options=self._options,
                )
                return
            except DeltaError:
                existing = self._open(table)  # another writer created it first
                if existing is None:
                    raise
        wanted = {field.name: field for field in deltalake.Schema.from_arrow(schema).fields}
        missing = columns_to_add(
            self.uri(table),
            {field.name: str(field.type) for field in existing.schema().fields},
            {name: str(field.type) for name, field in wanted.items()},
            store="Delta",
        )
        if missing:
            fields = [deltalake.Field(name, wanted[name].type, nullable=True) for name in missing]
            existing.alter.add_columns(fields)

    def _check_not_a_parquet_dataset(self) -> None:
        # VACUUM deletes every file that the Delta log does not list: a Parquet dataset's.
        if "://" not in self.url and (Path(self.url) / LAYOUT_FILE).exists():
            raise OutputError(
                f"{self.url} holds a Parquet dataset (it has {LAYOUT_FILE}), not Delta tables: "
                "give --table-format delta another --dest."
            )

    def _commit(self, table: str, attempt: Callable[[], None]) -> None:
        """Run ``attempt``; retry it while it conflicts with another writer's commit."""
        for number in range(1, self._max_attempts + 1):
            try:
                attempt()
                return
            except CommitFailedError as error:
                if number == self._max_attempts:
                    raise OutputError(
                        f"Delta table {self.uri(table)} kept changing under this sync: "
                        f"{_reason(error)} ({number} attempts). Rerun the sync; it loads only "
                        "the jobs not yet loaded."
                    ) from None
            except BaseException as error:  # a Rust panic is a BaseException
                if not _is_driver_error(error):
                    raise
                raise self._refused(table, error) from None
            backoff = min(_MAX_BACKOFF, _FIRST_BACKOFF * 2 ** (number - 1))
            self._sleep(backoff * random.uniform(0.5, 1.0))

    def _refused(self, table: str, error: BaseException) -> OutputError:
        hint = (
            "Free space there, or give a writable --dest, then rerun."
            if native_condition(error)
            else "Check that --dest exists and is writable, and its --storage-option settings."
        )
        return OutputError(f"Cannot write Delta table {self.uri(table)}: {_reason(error)}. {hint}")


def compact(
    dest: str,
    *,
    vacuum_hours: int | None = None,
    storage_options: Mapping[str, Any] | None = None,
    items_table: str = ITEMS_TABLE,
    jobs_table: str = JOBS_TABLE,
) -> dict[str, dict[str, int]]:
    """Compact the Delta tables a sync made under ``dest``; with ``vacuum_hours``, vacuum.

    Compaction rewrites each partition's small files into large ones, in a new version that
    holds the same rows. Vacuum then deletes the files that no version younger than
    ``vacuum_hours`` uses (0: every file the current version does not need), which ends time
    travel to older versions. Returns, per table, the files added, removed and vacuumed.

    Example:

        >>> compact("s3://bucket/warehouse", vacuum_hours=168)  # doctest: +SKIP
        {'items': {'files_added': 4, 'files_removed': 212, 'files_vacuumed': 212}, ...}
    """
    if vacuum_hours is not None and vacuum_hours < 0:
        raise InvalidInputError(f"--vacuum-hours must be 0 or more, got {vacuum_hours}.")
    store = DeltaStore(
        dest, storage_options=storage_options, items_table=items_table, jobs_table=jobs_table
    )
    report: dict[str, dict[str, int]] = {}
    for name in (ITEMS, JOBS):
        table = store._open(name)
        if table is None:
            raise OutputError(
                f"No Delta table at {store.uri(name)}: run `batch-export sync --dest {dest} "
                "--table-format delta` first, or check --dest."
            )
        report[name] = _compact_table(store, name, table, vacuum_hours)
    return report


def _compact_table(
    store: DeltaStore, name: str, table: deltalake.DeltaTable, vacuum_hours: int | None
) -> dict[str, int]:
    metrics: dict[str, Any] = {}

    def optimize() -> None:
        table.update_incremental()
        metrics.update(table.optimize.compact())

    store._commit(name, optimize)
    done = {"files_added": metrics["numFilesAdded"], "files_removed": metrics["numFilesRemoved"]}
    if vacuum_hours is not None:
        vacuumed: list[str] = []

        def vacuum() -> None:
            vacuumed[:] = table.vacuum(
                retention_hours=vacuum_hours,
                dry_run=False,
                enforce_retention_duration=False,
            )

        store._commit(name, vacuum)
        done["files_vacuumed"] = len(vacuumed)
    return done


def _with_date(day: date) -> Callable[[pa.RecordBatch], pa.RecordBatch]:
    def add(batch: pa.RecordBatch) -> pa.RecordBatch:
        column = pa.array([day] * batch.num_rows, pa.date32())
        return pa.RecordBatch.from_arrays(
            [*batch.columns, column], schema=DELTA_ITEM_SCHEMA.remove_metadata()
        )

    return add


def _table_name(name: str, *, option: str) -> str:
    quoted_identifier(name, option=option)  # the same rule as a database's table names
    return name


def _quoted(text: str) -> str:
    """A SQL string literal (job ids are plain identifiers; quotes doubled all the same)."""
    return "'" + text.replace("'", "''") + "'"


def _reason(error: BaseException) -> str:
    """What a delta-rs error says, in one line: its S3 error code when it has one; a full or
    read-only disk in our words (:func:`~batch_export.sync.stores.native.native_reason`)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error))  # delta-rs colours its error chains
    code = re.search(r"<Code>(\w+)</Code>", text)
    lines = [line.strip(" ↳\t") for line in text.splitlines() if line.strip(" ↳\t")]
    first = lines[0].rstrip(" .:") if lines else type(error).__name__
    if _is_panic(error):
        first = f"deltalake stopped on an internal error ({first})"
    said = f"{first} ({code.group(1)})" if code else first
    return native_reason(error, said=said) if native_condition(error) else said


def _is_panic(error: BaseException) -> bool:
    """Whether ``error`` is a Rust panic that pyo3 raised (``pyo3_runtime.PanicException``,
    a BaseException, whose module exists only once a panic happened)."""
    return type(error).__name__ == "PanicException"


def _is_driver_error(error: BaseException) -> bool:
    return isinstance(error, _DRIVER_ERRORS) or _is_panic(error)
