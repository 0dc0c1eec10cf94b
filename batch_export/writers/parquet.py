"""Parquet: zstd-compressed, written incrementally, in row groups of a useful size.

Batches arrive one API page at a time (about 50 rows). Writing each as its own row group
would give files thousands of tiny row groups, slow to read and poorly compressed; holding
the whole job would make memory grow with it. So batches are buffered and written as one row
group whenever ``row_group_rows`` rows or ``row_group_bytes`` bytes (in memory) are pending,
and once more on :meth:`ParquetWriter.close`.

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

from collections.abc import Mapping
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from batch_export.schema import ITEM_SCHEMA
from batch_export.writers.buffered import BufferedWriter

__all__ = ["ROW_GROUP_BYTES", "ROW_GROUP_ROWS", "ParquetWriter", "buffered", "read_table"]

_WRITE_BUFFER = 1 << 20

ROW_GROUP_ROWS = 50_000
# Groups of a few megabytes are written as the pages come, not all at the end. Each group is
# made one chunk per column before it is written (so that the file's bytes do not depend on
# how the pages came), which holds it twice for a moment: 4 MB rather than 8 MB kept a
# 100,000-item export 15 MB lower, and the 10,000-item HTML job 50 MB lower, at the same speed.
ROW_GROUP_BYTES = 4 * 1024 * 1024

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
        super().__init__(rows=row_group_rows, nbytes=row_group_bytes, schema=schema)
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
