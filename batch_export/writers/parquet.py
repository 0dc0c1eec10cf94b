"""Parquet: zstd-compressed, written incrementally, in row groups of a useful size.

Batches arrive one API page at a time (about 50 rows). Writing each as its own row group
would give files thousands of tiny row groups, slow to read and poorly compressed; holding
the whole job would make memory grow with it. So batches are buffered and written as one row
group whenever ``row_group_rows`` rows or ``row_group_bytes`` bytes of values are pending,
and once more on :meth:`ParquetWriter.close`.

The same rows give the same file, byte for byte, however they were cut into batches (which
depends on how fast the pages came): a row group ends at the first row where its rows or its
bytes reach the limit, the batch that holds that row is cut there, and the bytes counted are
the rows' own (:func:`row_bytes`: their values and offsets), not the batches' buffers.

The file holds :data:`~batch_export.schema.ITEM_SCHEMA`: ``large_string`` columns and the
schema metadata (``batch_export.schema_version``) come back as written. The list in
``links`` is stored in the Parquet specification's standard layout, whose child is named
``element`` (Arrow's own name is ``item``); Arrow compares list types without that name,
and Spark, DuckDB and pandas read this layout as a list of strings.

Example:

    >>> import io, pyarrow as pa, pyarrow.parquet as pq
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> batch = pa.RecordBatch.from_pylist([{"job_id": "j1", "input_index": 0}],
    ...                                    schema=ITEM_SCHEMA)
    >>> sink = io.BytesIO()
    >>> writer = ParquetWriter(sink)
    >>> writer.write(batch)
    >>> writer.close()
    >>> schema = pq.ParquetFile(io.BytesIO(sink.getvalue())).schema_arrow
    >>> schema.equals(ITEM_SCHEMA), schema.metadata
    (True, {b'batch_export.schema_version': b'1'})
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batch_export.schema import ITEM_SCHEMA
from batch_export.writers.buffered import BufferedWriter

__all__ = [
    "ROW_GROUP_BYTES",
    "ROW_GROUP_ROWS",
    "ParquetWriter",
    "buffered",
    "read_table",
    "row_bytes",
]

_WRITE_BUFFER = 1 << 20
_NEVER = 1 << 62  # the buffer's own byte limit: the groups are cut by the rows' bytes

ROW_GROUP_ROWS = 50_000
# Groups of a few megabytes are written as the pages come, not all at the end. Each group is
# made one chunk per column before it is written (so that the file's bytes do not depend on
# how the pages came), which holds it twice for a moment: 4 MB rather than 8 MB kept a
# 100,000-item export 15 MB lower, and the 10,000-item HTML job 50 MB lower, at the same speed.
# (Counted then in the batches' nbytes, at the batch that filled a group: about 6 MB of
# md100k's rows. Counted in the rows' own bytes: 6 MB peaked 9 MB higher than 4 MB, 3 MB about
# 2 MB lower at the same CPU and a 0.3% bigger file (8 pairs side by side; md1k unchanged),
# 2 MB 4 MB lower but 3% more CPU and a 5% bigger file.)
ROW_GROUP_BYTES = 3 * 1024 * 1024

# Page text is nearly always unique: a dictionary for it costs time and saves nothing.
_NO_DICTIONARY = frozenset({"markdown", "html", "links", "extra"})
# Min/max of page text would be long, costly and useless for filtering.
_NO_STATISTICS = frozenset({"markdown", "html", "extra"})


class ParquetWriter(BufferedWriter):
    """Write record batches of the item schema to ``sink`` as one Parquet file.

    Example:

        >>> import io
        >>> writer = ParquetWriter(io.BytesIO(), row_group_rows=10_000)
        >>> writer.format
        'parquet'
    """

    format: str = "parquet"

    def __init__(
        self,
        sink: BinaryIO,
        *,
        row_group_rows: int = ROW_GROUP_ROWS,
        row_group_bytes: int = ROW_GROUP_BYTES,
        compression_level: int | None = None,
        metadata: Mapping[str, str] | None = None,
        schema: pa.Schema = ITEM_SCHEMA,
    ) -> None:
        if row_group_rows < 1 or row_group_bytes < 1:
            raise ValueError("row_group_rows and row_group_bytes must be at least 1")
        # The buffer only holds the batches: the groups are cut here, by the rows (see write).
        super().__init__(rows=row_group_rows, nbytes=_NEVER, schema=schema)
        self._limit_rows, self._limit_bytes = row_group_rows, row_group_bytes
        self._rows = self._bytes = 0
        # The job's header (see batch_export.schema.export_metadata) rides in the schema's
        # key-value metadata, beside the schema version, so that the file describes its job.
        schema = schema.with_metadata({**(schema.metadata or {}), **(metadata or {})})
        self._stream = buffered(sink)
        self._writer = pq.ParquetWriter(
            self._stream,
            schema,
            compression="zstd",
            compression_level=compression_level,
            use_dictionary=[n for n in schema.names if n not in _NO_DICTIONARY],
            write_statistics=[n for n in schema.names if n not in _NO_STATISTICS],
        )

    def write(self, batch: pa.RecordBatch) -> None:
        """Buffer ``batch``; write a row group each time one is full, cut at its last row."""
        if self._closed:
            raise ValueError(f"write() after close() on a {type(self).__name__}")
        self._buffer.check(batch)  # before any piece: a batch of another schema is refused whole
        for piece, full in self._pieces(batch):
            self._buffer.add(piece)
            if full:
                self._write_pending()

    def _pieces(self, batch: pa.RecordBatch) -> Iterator[tuple[pa.RecordBatch, bool]]:
        """``batch`` cut where row groups end, each piece with whether it ends one."""
        ends = row_bytes(batch)  # ends[i]: the bytes of the batch's first i rows
        start, count = 0, batch.num_rows
        while start < count:
            room = self._limit_bytes - self._bytes
            # The first row at which the group's bytes reach the limit (one row at least).
            by_bytes = int(np.searchsorted(ends, ends[start] + room, side="left"))
            end = min(count, start + self._limit_rows - self._rows, max(by_bytes, start + 1))
            self._rows += end - start
            self._bytes += int(ends[end] - ends[start])
            full = self._rows >= self._limit_rows or self._bytes >= self._limit_bytes
            if full:
                self._rows = self._bytes = 0
            yield (batch if end - start == count else batch.slice(start, end - start)), full
            start = end

    def _write_table(self, table: pa.Table) -> None:
        """One row group. One chunk per column: pyarrow starts a data page at each chunk
        boundary, and the boundaries depend on how the pages came (concurrency, chunking);
        the file's bytes must not."""
        table = table.combine_chunks()
        self._writer.write_table(table, row_group_size=table.num_rows)

    def _finish(self) -> None:
        """The file footer; the rest goes to the sink, which stays open."""
        self._writer.close()
        self._stream.detach()


def row_bytes(batch: pa.RecordBatch) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The bytes of the first ``i`` rows of ``batch``, for ``i`` from 0 to its rows: the
    values of its text and binary columns (lists of them too) and their offsets, and the width
    of its other columns (8 bytes a row for another nested type). Read from the offsets: a
    function of the rows only, whatever buffers they sit in.

        >>> batch = pa.RecordBatch.from_pydict({"s": ["ab", None, "cde"], "n": [1, 2, 3]})
        >>> row_bytes(batch).tolist()
        [0, 14, 26, 41]
    """
    ends = np.zeros(batch.num_rows + 1, dtype=np.int64)
    width = 0
    for column in batch.columns:
        kind = column.type
        if pa.types.is_list(kind) and _offsets_width(kind.value_type):
            lists, values = _offsets(column), _offsets(column.values)
            ends += values[lists] - values[lists[0]]
            width += 4 + _offsets_width(kind.value_type)
        elif _offsets_width(kind) and not pa.types.is_list(kind):
            values = _offsets(column)
            ends += values - values[0]
            width += _offsets_width(kind)
        else:
            try:
                width += max(kind.bit_width // 8, 1)
            except ValueError:  # not of a fixed width
                width += 8
    ends += np.arange(batch.num_rows + 1, dtype=np.int64) * width
    return ends


def _offsets_width(kind: pa.DataType) -> int:
    """The width of the offsets of a text or binary type; 0 for any other type."""
    if pa.types.is_string(kind) or pa.types.is_binary(kind) or pa.types.is_list(kind):
        return 4
    if pa.types.is_large_string(kind) or pa.types.is_large_binary(kind):
        return 8
    return 0


def _offsets(array: pa.Array) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The ``len(array) + 1`` offsets of a text, binary or list array, where it is sliced.

    From its buffer: ``to_numpy()`` would make pyarrow import pandas.
    """
    width = _offsets_width(array.type)
    if len(array) == 0:
        return np.zeros(1, dtype=np.int64)
    offsets = np.frombuffer(
        array.buffers()[1],
        dtype=np.int32 if width == 4 else np.int64,
        count=len(array) + 1,
        offset=array.offset * width,
    )
    return offsets.astype(np.int64)


def buffered(sink: BinaryIO) -> pa.BufferedOutputStream:
    """``sink`` behind a buffer in pyarrow's own memory; ``detach()`` flushes it, leaving the
    sink open.

    pyarrow's Parquet writer writes page headers and column chunks in many small writes; to a
    Python file each takes the GIL back from pyarrow's threads, and with several jobs
    written at once those hand-overs cost more than the writing.
    """
    return pa.BufferedOutputStream(pa.PythonFile(sink, mode="w"), buffer_size=_WRITE_BUFFER)


def read_table(handle: BinaryIO, block_size: int) -> pa.Table:
    """A Parquet export read back (``block_size`` is for the text formats)."""
    # Not pq.read_table: on a Python file object its reader threads can abort the
    # interpreter at exit (seen with pyarrow 18 to 26 here); ParquetFile does not.
    return pq.ParquetFile(handle).read()
