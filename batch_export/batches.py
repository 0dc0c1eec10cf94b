"""Record batches gathered into bigger ones (the one buffer of the package), and one-row tables.

Pages arrive as batches of about 50 rows. Every consumer (the joining of pages before the
writers, the Parquet row groups, the CSV encoding chunks) pays a fixed cost per batch, so each
gathers batches until enough rows or bytes are pending, then takes them at once.

Example:

    >>> import pyarrow as pa
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> page = pa.RecordBatch.from_pylist([{"input_index": 0}] * 50, schema=ITEM_SCHEMA)
    >>> [b.num_rows for b in joined([page] * 5, rows=120, nbytes=1 << 30)]
    [150, 100]

:func:`one_row` makes a one-row table from Python values through the arrays' buffers:
``pa.array`` on Python values makes pyarrow import pandas on its first use (a third of a
second of CPU), which neither the export nor the sync otherwise needs.

    >>> from datetime import UTC, datetime
    >>> schema = pa.schema([("id", pa.string()), ("n", pa.int64()), ("tags", pa.list_(pa.string())),
    ...                     ("at", pa.timestamp("us", tz="UTC"))])
    >>> one_row(schema, {"id": "j1", "n": None, "tags": ["a", "é"],
    ...                  "at": datetime(2026, 5, 26, tzinfo=UTC)}).to_pylist()[0]["tags"]
    ['a', 'é']
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from batch_export.schema import ITEM_SCHEMA

__all__ = ["BatchBuffer", "check_schema", "joined", "one_row", "string_array"]


class BatchBuffer:
    """Batches of the item schema (or of ``schema``), pending until ``rows`` rows or
    ``nbytes`` bytes are held."""

    def __init__(self, *, rows: int, nbytes: int, schema: pa.Schema = ITEM_SCHEMA) -> None:
        if rows < 1 or nbytes < 1:
            raise ValueError("rows and nbytes must be at least 1")
        self._schema = schema
        self._limit_rows, self._limit_bytes = rows, nbytes
        self._pending: list[pa.RecordBatch] = []
        self._rows = self._bytes = 0

    def check(self, batch: pa.RecordBatch) -> None:
        """Refuse ``batch`` unless it has the buffer's schema (see :func:`check_schema`)."""
        check_schema(batch, self._schema)

    def add(self, batch: pa.RecordBatch) -> bool:
        """Hold ``batch`` (checked against the schema); True once the buffer is full."""
        check_schema(batch, self._schema)
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
        return pa.Table.from_batches(pending, schema=self._schema) if pending else None


def check_schema(batch: pa.RecordBatch, schema: pa.Schema) -> None:
    """Refuse ``batch`` unless it has ``schema``: a ``ValueError`` that shows the batch's.

    Every writer checks its batches here, before it writes any of their rows.

    >>> check_schema(pa.RecordBatch.from_pydict({"n": [1]}), ITEM_SCHEMA)
    Traceback (most recent call last):
    ValueError: Expected a batch of ITEM_SCHEMA, got:
    n: int64
    """
    if batch.schema != schema:
        name = "ITEM_SCHEMA" if schema.equals(ITEM_SCHEMA) else "the writer's schema"
        raise ValueError(f"Expected a batch of {name}, got:\n{batch.schema}")


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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_INTEGERS = {pa.int64(): "<q", pa.int32(): "<i"}


def one_row(schema: pa.Schema, row: Mapping[str, Any]) -> pa.Table:
    """A one-row table of ``schema`` holding ``row`` (a value or None for every field).

    Takes strings, 64- and 32-bit integers, lists of strings and aware datetimes (for
    microsecond timestamps). A value its column cannot hold (an integer past the type's
    range, a string that is not Unicode text) is a ``ValueError`` naming the column.
    """
    arrays = []
    for field in schema:
        try:
            arrays.append(_one_value(field.type, row[field.name]))
        except (struct.error, TypeError, AttributeError, UnicodeError, OverflowError) as error:
            kind = type(row[field.name]).__name__
            raise ValueError(f"column {field.name!r} cannot hold that {kind}: {error}") from None
    return pa.Table.from_arrays(arrays, schema=schema)


def _one_value(arrow_type: pa.DataType, value: Any) -> pa.Array:
    if value is None:
        return pa.nulls(1, arrow_type)
    if arrow_type == pa.string():
        return string_array([value])
    if arrow_type in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError("expected an integer")
        data = struct.pack(_INTEGERS[arrow_type], value)
    elif pa.types.is_timestamp(arrow_type) and arrow_type.unit == "us":
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise TypeError("expected an aware datetime")
        data = struct.pack("<q", (value - _EPOCH) // _MICROSECOND)
    elif arrow_type == pa.list_(pa.string()):
        offsets = struct.pack("<ii", 0, len(value))
        return pa.ListArray.from_buffers(
            arrow_type, 1, [None, pa.py_buffer(offsets)], children=[string_array(list(value))]
        )
    else:
        raise TypeError(f"{arrow_type} is not a type one_row makes")
    return pa.Array.from_buffers(arrow_type, 1, [None, pa.py_buffer(data)])


def string_array(values: list[str]) -> pa.StringArray:
    """``values`` as a string array, built from its buffers (no pandas, see above).

    >>> string_array(["a", "é"]).to_pylist()
    ['a', 'é']
    """
    encoded = [value.encode("utf-8") for value in values]  # a lone surrogate: UnicodeError
    ends, end = [0], 0
    for data in encoded:
        end += len(data)
        ends.append(end)
    offsets = struct.pack(f"<{len(ends)}i", *ends)
    return pa.StringArray.from_buffers(
        len(values), pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))
    )
