"""JSON Lines: one JSON object per item, one item per line.

Each line is an object with the columns of :data:`~batch_export.schema.ITEM_SCHEMA` as keys,
in schema order; ``links`` stays a list, null stays null, text is UTF-8 with non-ASCII kept
as is. JSON escapes every control character (``\\n``, ``\\u0000``, ``\\u001b``), so text from
scraped pages never breaks a line. Every line, the last included, ends with ``\\n``.

Rows are encoded by :func:`batch_export.text.encode_json`, the one JSON encoding of the
package (compact, UTF-8), which the CSV writer uses for ``links`` too.

Example:

    >>> import io, pyarrow as pa
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> batch = pa.RecordBatch.from_pylist(
    ...     [{"job_id": "j1", "input_index": 0, "links": ["https://a.example/ü"]}],
    ...     schema=ITEM_SCHEMA)
    >>> sink = io.BytesIO()
    >>> writer = JsonlWriter(sink)
    >>> writer.write(batch)
    >>> writer.close()
    >>> sink.getvalue().decode()[:49]
    '{"job_id":"j1","input_index":0,"url":null,"status'
"""

from __future__ import annotations

from typing import BinaryIO

import pyarrow as pa
import pyarrow.json as pa_json

from batch_export.batches import check_schema
from batch_export.schema import ITEM_SCHEMA
from batch_export.text import encode_json

__all__ = ["JsonlWriter", "read_table"]


class JsonlWriter:
    """Write record batches of the item schema to ``sink`` as JSON Lines.

    Example:

        >>> import io
        >>> writer = JsonlWriter(io.BytesIO())
        >>> writer.format
        'jsonl'
    """

    format: str = "jsonl"

    def __init__(self, sink: BinaryIO, *, schema: pa.Schema = ITEM_SCHEMA) -> None:
        self._sink = sink
        self._schema = schema
        self._closed = False

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one line per row of ``batch``."""
        if self._closed:
            raise ValueError("write() after close() on a JsonlWriter")
        check_schema(batch, self._schema)
        self._sink.write(b"".join(encode_json(row) + b"\n" for row in batch.to_pylist()))

    def close(self) -> None:
        """Finish the output; the sink itself stays open (it belongs to the caller)."""
        self._closed = True


def read_table(handle: BinaryIO, block_size: int) -> pa.Table:
    """A JSON Lines export read back; ``block_size`` must hold the longest line."""
    if not handle.read(1):
        return ITEM_SCHEMA.empty_table()  # an export of an empty job; pyarrow refuses it
    handle.seek(0)
    return pa_json.read_json(
        handle,
        read_options=pa_json.ReadOptions(block_size=block_size),
        parse_options=pa_json.ParseOptions(
            explicit_schema=ITEM_SCHEMA, unexpected_field_behavior="error"
        ),
    )
