"""Record batches gathered into bigger ones: the one buffer of the package.

Pages arrive as batches of about 50 rows. Every consumer (the joining of pages before the
writers, the Parquet row groups, the CSV encoding chunks) pays a fixed cost per batch, so each
gathers batches until enough rows or bytes are pending, then takes them at once.

Example:

    >>> import pyarrow as pa
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> page = pa.RecordBatch.from_pylist([{"input_index": 0}] * 50, schema=ITEM_SCHEMA)
    >>> [b.num_rows for b in joined([page] * 5, rows=120, nbytes=1 << 30)]
    [150, 100]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa

from batch_export.schema import ITEM_SCHEMA

__all__ = ["BatchBuffer", "joined"]


class BatchBuffer:
    """Batches of the item schema, pending until ``rows`` rows or ``nbytes`` bytes are held."""

    def __init__(self, *, rows: int, nbytes: int) -> None:
        if rows < 1 or nbytes < 1:
            raise ValueError("rows and nbytes must be at least 1")
        self._limit_rows, self._limit_bytes = rows, nbytes
        self._pending: list[pa.RecordBatch] = []
        self._rows = self._bytes = 0

    def add(self, batch: pa.RecordBatch) -> bool:
        """Hold ``batch`` (checked against the schema); True once the buffer is full."""
        if batch.schema != ITEM_SCHEMA:
            raise ValueError(f"Expected a batch of ITEM_SCHEMA, got:\n{batch.schema}")
        if batch.num_rows:
            self._pending.append(batch)
            self._rows += batch.num_rows
            self._bytes += batch.nbytes
        return self._rows >= self._limit_rows or self._bytes >= self._limit_bytes

    def take(self) -> list[pa.RecordBatch]:
        """The pending batches, in order; the buffer is empty afterwards."""
        pending, self._pending, self._rows, self._bytes = self._pending, [], 0, 0
        return pending

    def take_table(self) -> pa.Table | None:
        """The pending batches as one table, or None when nothing is pending."""
        pending = self.take()
        return pa.Table.from_batches(pending, schema=ITEM_SCHEMA) if pending else None


def joined(
    batches: Iterable[pa.RecordBatch],
    *,
    rows: int,
    nbytes: int,
    memory_pool: pa.MemoryPool | None = None,
) -> Iterator[pa.RecordBatch]:
    """Consecutive ``batches`` joined into batches of about ``rows`` rows (or ``nbytes``)."""
    buffer = BatchBuffer(rows=rows, nbytes=nbytes)
    for batch in batches:
        if buffer.add(batch):
            yield _one(buffer.take(), memory_pool)
    pending = buffer.take()
    if pending:
        yield _one(pending, memory_pool)


def _one(batches: list[pa.RecordBatch], memory_pool: pa.MemoryPool | None) -> pa.RecordBatch:
    # A batch big enough on its own is passed on as it is, not copied.
    return batches[0] if len(batches) == 1 else pa.concat_batches(batches, memory_pool=memory_pool)
