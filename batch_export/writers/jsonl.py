"""JSON Lines: one JSON object per item, one item per line.

Each line is an object with the columns of :data:`~batch_export.schema.ITEM_SCHEMA` as keys,
in schema order; ``links`` stays a list, null stays null, text is UTF-8 with non-ASCII kept
as is. JSON escapes every control character (``\\n``, ``\\u0000``, ``\\u001b``), so text from
scraped pages never breaks a line. Every line, the last included, ends with ``\\n``.

:func:`encode_json` is the one JSON encoding of the package (compact, UTF-8): orjson when it
is importable, else the standard library, byte for byte the same. The CSV writer uses it
for ``links``.

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

import json
from collections.abc import Callable
from typing import BinaryIO

import pyarrow as pa

from batch_export.schema import ITEM_SCHEMA

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; the fallback is tested
    HAVE_ORJSON = False
else:
    HAVE_ORJSON = True

__all__ = ["JsonlWriter", "encode_json"]


def _encode_orjson(value: object) -> bytes:
    return orjson.dumps(value)


def _encode_stdlib(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


encode_json: Callable[[object], bytes] = _encode_orjson if HAVE_ORJSON else _encode_stdlib
"""Compact UTF-8 JSON of ``value``: ``encode_json(["a", "ü"]) == '["a","ü"]'.encode()``."""


class JsonlWriter:
    """Write record batches of the item schema to ``sink`` as JSON Lines.

    Example:

        >>> import io
        >>> writer = JsonlWriter(io.BytesIO())
        >>> writer.format
        'jsonl'
    """

    format: str = "jsonl"

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self._closed = False

    def write(self, batch: pa.RecordBatch) -> None:
        """Append one line per row of ``batch``."""
        if self._closed:
            raise ValueError("write() after close() on a JsonlWriter")
        if batch.schema != ITEM_SCHEMA:
            raise ValueError(f"Expected a batch of ITEM_SCHEMA, got:\n{batch.schema}")
        encode = encode_json
        self._sink.write(b"".join(encode(row) + b"\n" for row in batch.to_pylist()))

    def close(self) -> None:
        """Finish the output; the sink itself stays open (it belongs to the caller)."""
        self._closed = True
