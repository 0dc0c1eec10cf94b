"""What the buffered writers share: batches held until enough are pending, then one table.

Batches arrive one API page at a time (about 50 rows), and each write of CSV or Parquet has a
fixed cost (an encoding step, a row group). :class:`BufferedWriter` holds them in a
:class:`~batch_export.batches.BatchBuffer`, hands its format one table at a time
(``_write_table``) whenever the buffer is full and once more on :meth:`~BufferedWriter.close`,
then lets the format finish its file (``_finish``).

Example:

    >>> import io, pyarrow as pa
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> class Rows(BufferedWriter):
    ...     format = "rows"
    ...     def _write_table(self, table): print(table.num_rows, "rows")
    ...     def _finish(self): print("finished")
    >>> writer = Rows(rows=2, nbytes=2**20, schema=ITEM_SCHEMA)
    >>> for index in range(3):
    ...     writer.write(pa.RecordBatch.from_pylist([{"input_index": index}], schema=ITEM_SCHEMA))
    2 rows
    >>> writer.close()
    1 rows
    finished
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import pyarrow as pa

from batch_export.batches import BatchBuffer

__all__ = ["BufferedWriter"]


class BufferedWriter(ABC):
    """A writer that writes its batches ``rows`` rows or ``nbytes`` bytes at a time."""

    format: str

    def __init__(self, *, rows: int, nbytes: int, schema: pa.Schema) -> None:
        self._buffer = BatchBuffer(rows=rows, nbytes=nbytes, schema=schema)
        self._closed = False

    def write(self, batch: pa.RecordBatch) -> None:
        """Buffer ``batch`` (checked against the schema); write what is pending once enough is."""
        if self._closed:
            raise ValueError(f"write() after close() on a {type(self).__name__}")
        if self._buffer.add(batch):
            self._write_pending()

    def close(self) -> None:
        """Write what is pending and finish the file; the sink stays open."""
        if self._closed:
            return
        self._closed = True
        self._write_pending()
        self._finish()

    def _write_pending(self) -> None:
        table = self._buffer.take_table()
        if table is not None:
            self._write_table(table)

    @abstractmethod
    def _write_table(self, table: pa.Table) -> None:
        """Write ``table``, the batches pending, in order."""

    @abstractmethod
    def _finish(self) -> None:
        """End the file (a footer, the writer's own buffers), leaving the sink open."""
