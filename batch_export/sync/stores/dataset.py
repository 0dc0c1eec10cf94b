"""The folder store: a hive-partitioned Parquet dataset on local disk or any fsspec URL.

Each job is loaded in this order, each step one atomic file operation::

    1. remove the job's marker, then its jobs row      (readers stop trusting the old export)
    2. remove its items files at any other path         (a created_at that moved day)
    3. write items/date=D/<job_id>.parquet              (whole, or not at all)
    4. write jobs/date=D/<job_id>.parquet               (the job is now in the dataset)
    5. write _markers/<job_id>.<token>.json             (the sync's own record, last)

So, at every moment, a jobs row describes exactly the items file beside it, and an items file
is always one whole export of its job. **Readers trust the jobs table**: a job is in the
dataset when its row is in ``jobs/``, and its items are the items file of the same day and id.
A kill between steps 3 and 4 leaves an items file without a row (an *orphan*, which
:meth:`DatasetStore.prepare` removes before anything else); a kill between 4 and 5 leaves a job
that is whole but that the next sync loads again. The store is the only writer of its
destination: :meth:`DatasetStore.prepare` takes the dataset's lock
(:mod:`~batch_export.sync.stores.lock`) until the store is closed, so a second sync meanwhile
stops at once with one sentence. Paths and the jobs schema are in
:mod:`batch_export.sync.layout`; the files, on any file system, in
:mod:`~batch_export.sync.stores.destination`; what the dataset holds, in
:mod:`~batch_export.sync.stores.dataset_state`.

The jobs files keep :data:`~batch_export.sync.layout.JOBS_SCHEMA` (a column more would be
another layout); what the table stores' jobs rows count besides (the failure codes, the
failed items that resubmitting may help, the API key hidden) is in the marker's ``counts``.

Example:

    >>> import tempfile
    >>> with DatasetStore(tempfile.mkdtemp()) as store:
    ...     store.scan().recorded, store.prepare()
    ({}, 0)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from batch_export.batches import one_row
from batch_export.errors import InvalidInputError
from batch_export.sync.layout import (
    ITEMS_DIR,
    JOBS_DIR,
    JOBS_SCHEMA,
    WATERMARK_FILE,
    Marker,
    items_path,
    job_row,
    jobs_path,
    marker_path,
    partition_date,
)
from batch_export.sync.store import ITEMS_TABLE, JOBS_TABLE, Closing, JobLoad, Loaded, StoreState
from batch_export.sync.stores.dataset_state import DatasetState
from batch_export.sync.stores.destination import Destination
from batch_export.sync.stores.lock import WriterLock
from batch_export.writers.sink import write_batches

__all__ = ["DatasetStore"]

_ROWS = JOBS_SCHEMA.get_field_index("rows")
_ROWS_ONLY = pa.schema([JOBS_SCHEMA.field("rows")])


class DatasetStore(Closing):
    """A :class:`~batch_export.sync.store.Store` that keeps a Parquet dataset under ``url``.

    ``dest`` is a local path, an fsspec URL (``s3://bucket/prefix``) or a ready
    :class:`~batch_export.sync.stores.destination.Destination`; ``storage_options`` go to its file
    system. The tables are the folders ``items/`` and ``jobs/``, whose names are part of the
    layout.
    """

    def __init__(
        self,
        dest: str | os.PathLike[str] | Destination,
        *,
        storage_options: Mapping[str, Any] | None = None,
        items_table: str = ITEMS_TABLE,
        jobs_table: str = JOBS_TABLE,
    ) -> None:
        if (items_table, jobs_table) != (ITEMS_DIR, JOBS_DIR):
            raise InvalidInputError(
                f"A Parquet dataset keeps its tables in the folders {ITEMS_DIR}/ and "
                f"{JOBS_DIR}/; --items-table and --jobs-table apply to --table-format delta, "
                "duckdb:// and postgresql:// destinations."
            )
        self.dest = (
            dest
            if isinstance(dest, Destination)
            else Destination(os.fspath(dest), storage_options=storage_options)
        )
        self.url = self.dest.url
        self._state: DatasetState | None = None
        self._lock = WriterLock(self.dest)

    def __repr__(self) -> str:
        return f"DatasetStore({self.url!r})"

    def scan(self) -> StoreState:
        """The jobs recorded by a marker, with its token, and the jobs whose files are whole."""
        self._state = DatasetState.scan(self.dest)
        watermark = self.dest.read(WATERMARK_FILE)
        return StoreState(
            recorded=self._state.tokens(),
            whole=self._state.whole(),
            watermark=None if watermark is None else watermark.decode("utf-8", "replace"),
        )

    def prepare(self) -> int:
        """Write the layout file, and remove what a killed sync left; return the orphans removed.

        Half-written files (``_staging/``, staged uploads) go too, uncounted. The dataset's
        lock is taken first (another sync holding it is an :class:`OutputError`), and the
        files listed again under it: what another sync wrote since :meth:`scan` is not an
        orphan to remove.
        """
        self._lock.acquire()
        self.scan()
        state = self._scanned()
        state.write_layout(self.dest)
        self.dest.clear_staging()
        orphans = state.orphans()
        for path in orphans:
            self.dest.delete(path)
            state.discard(path)
        return len(orphans)

    def load(self, load: JobLoad, batches: Iterable[pa.RecordBatch]) -> Loaded:
        """Steps 1 to 5 above; return the rows written and where. A failure leaves no file
        trusted."""
        self._lock.check()
        state, job_id = self._scanned(), load.job.job_id
        day = partition_date(load.created_at)
        items, row = items_path(job_id, day), jobs_path(job_id, day)
        # The row is made before any file changes: a job its table cannot hold fails cleanly.
        table = job_row(
            load.job, rows=0, exported_at=load.exported_at, tool_version=load.tool_version
        )
        self._unpublish(job_id, keep=items)
        rows = self.dest.publish(
            items, lambda sink: write_batches(batches, sink, format="parquet", job=load.job)
        )
        state.add(items)
        counted = one_row(_ROWS_ONLY, {"rows": rows}).column(0)
        table = table.set_column(_ROWS, _ROWS_ONLY.field(0), counted)
        self.dest.publish(row, lambda sink: sink.write(_parquet_bytes(table)))
        state.add(row)
        marker = Marker(
            job_id=job_id,
            fingerprint=dict(load.fingerprint),
            token=load.token,
            rows=rows,
            items_path=items,
            jobs_path=row,
            exported_at=load.exported_at.isoformat(),
            tool_version=load.tool_version,
            counts=_marker_counts(load.counts()),
        )
        # Not flushed to disk: a marker only spares the next sync a load that is whole already.
        path = marker_path(job_id, marker.token)
        self.dest.publish_bytes(path, marker.to_json(), durable=False)
        return Loaded(rows=rows, items_path=items, values_changed=load.values_changed())

    def save_watermark(self, document: str) -> None:
        """Replace ``_watermark.json``, whole (see :mod:`batch_export.sync.watermark`)."""
        self._lock.check()
        self.dest.publish_bytes(WATERMARK_FILE, document.encode())

    def close(self) -> None:
        """Give back the dataset's lock; every file is closed when written."""
        self._lock.release()

    def _scanned(self) -> DatasetState:
        if self._state is None:
            self.scan()
        assert self._state is not None
        return self._state

    def _unpublish(self, job_id: str, *, keep: str) -> None:
        """Steps 1 and 2: take the job out of what readers trust, before its items change."""
        state = self._scanned()
        items, rows, markers = state.files_of(job_id)
        for path in [*sorted(markers), *sorted(rows), *sorted(items - {keep})]:
            self.dest.delete(path)
            state.discard(path)


def _marker_counts(counts: Mapping[str, Any]) -> dict[str, Any]:
    """A load's counts as a marker keeps them: ``failure_codes`` as JSON, not JSON text.

    >>> _marker_counts({"failure_codes": '{"TIMEOUT":{"items":2}}', "api_key_hidden": 0})
    {'failure_codes': {'TIMEOUT': {'items': 2}}, 'api_key_hidden': 0}
    """
    codes = counts.get("failure_codes")
    parsed = {"failure_codes": json.loads(codes)} if isinstance(codes, str) else {}
    return {**counts, **parsed}


def _parquet_bytes(table: pa.Table) -> memoryview:
    """A small table as Parquet, made in memory: pyarrow writes a file in many small writes,
    each of which, to a Python file, would take the GIL back from its thread. One row gains
    nothing from compression, whose codecs cost a fifth of the writing, nor from statistics
    or dictionaries (a quarter of what is left, measured)."""
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="none", write_statistics=False, use_dictionary=False)
    return memoryview(buffer.getvalue())
