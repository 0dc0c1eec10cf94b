"""The output contract: one place for column names, types and order.

Every writer writes exactly :data:`ITEM_SCHEMA`. Users' warehouse tables depend on it, so a
change here is a breaking change and bumps :data:`SCHEMA_VERSION`.

CSV and JSONL hold what CSV cannot: ``links`` (a list of strings) is written to CSV as a JSON
array string (``["https://a", "https://b"]``), null as an empty field; JSONL keeps it a list.

Example:

    >>> from batch_export.schema import ITEM_SCHEMA, COLUMN_NAMES
    >>> COLUMN_NAMES[:3]
    ('job_id', 'input_index', 'url')
    >>> str(ITEM_SCHEMA.field("links").type)
    'list<item: string>'
"""

from __future__ import annotations

import pyarrow as pa

__all__ = [
    "COLUMN_NAMES",
    "DATA_FIELDS",
    "ITEM_FIELDS",
    "ITEM_SCHEMA",
    "LIST_COLUMNS",
    "METADATA_FIELDS",
    "SCHEMA_VERSION",
]

SCHEMA_VERSION = 1

ITEM_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("job_id", pa.string()),
        pa.field("input_index", pa.int64()),
        pa.field("url", pa.string()),
        pa.field("status", pa.string()),
        pa.field("error_code", pa.string()),
        pa.field("error_message", pa.string()),
        pa.field("markdown", pa.large_string()),
        pa.field("html", pa.large_string()),
        pa.field("links", pa.list_(pa.string())),
        pa.field("http_status", pa.int32()),
        pa.field("duration_ms", pa.int64()),
        pa.field("retry_count", pa.int32()),
        pa.field("tokens_charged", pa.int64()),
        pa.field("extra", pa.string()),
    ],
    metadata={b"batch_export.schema_version": str(SCHEMA_VERSION).encode()},
)

COLUMN_NAMES: tuple[str, ...] = tuple(ITEM_SCHEMA.names)

# Where each column comes from in an API item: the item itself, `data`, or `metadata`.
ITEM_FIELDS: tuple[str, ...] = (
    "input_index",
    "url",
    "status",
    "error_code",
    "error_message",
    "data",
    "metadata",
)
DATA_FIELDS: tuple[str, ...] = ("markdown", "html", "links")
METADATA_FIELDS: tuple[str, ...] = ("http_status", "duration_ms", "retry_count", "tokens_charged")

LIST_COLUMNS: tuple[str, ...] = ("links",)
