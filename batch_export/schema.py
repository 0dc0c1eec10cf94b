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

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from batch_export.text import strict_json

__all__ = [
    "COLUMN_NAMES",
    "DATA_FIELDS",
    "ITEM_FIELDS",
    "ITEM_SCHEMA",
    "JOB_METADATA_KEY",
    "LIST_COLUMNS",
    "METADATA_FIELDS",
    "SCHEMA_VERSION",
    "SCRAPE_INVALID",
    "SCRAPE_SCHEMA",
    "TOOL_VERSION_KEY",
    "export_metadata",
    "job_header",
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

# The table of `batch-export scrape`: one row per input line, the item columns of its last
# attempt between the line's number (from 1) and how many times it was submitted (0 for a
# line never sent). A line that is no URL, or that the API refused as one, has the status
# SCRAPE_INVALID with error_code INVALID_URL.
SCRAPE_SCHEMA: pa.Schema = pa.schema(
    [pa.field("line", pa.int64()), *ITEM_SCHEMA, pa.field("attempts", pa.int32())],
    metadata=ITEM_SCHEMA.metadata,
)
SCRAPE_INVALID = "invalid"

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

# A Parquet export carries its job's header in the file's key-value metadata, so that the
# file says which job it holds, its status and its tokens (``batch-export report`` reads it).
JOB_METADATA_KEY = "batch_export.job"
TOOL_VERSION_KEY = "batch_export.tool_version"


def export_metadata(job: Mapping[str, Any], *, tool_version: str) -> dict[str, str]:
    """The key-value metadata of an export of ``job`` (a ``JobStatus.to_dict()``).

    >>> metadata = export_metadata({"job_id": "j1", "status": "done"}, tool_version="0.2.0")
    >>> metadata["batch_export.job"], metadata["batch_export.tool_version"]
    ('{"job_id":"j1","status":"done"}', '0.2.0')
    """
    return {JOB_METADATA_KEY: strict_json(job, sort_keys=True), TOOL_VERSION_KEY: tool_version}


def job_header(metadata: Mapping[bytes, bytes] | None) -> dict[str, Any] | None:
    """The job's header from a file's key-value metadata, or None when it has none.

    >>> job_header({b"batch_export.job": b'{"job_id": "j1"}'})
    {'job_id': 'j1'}
    """
    raw = (metadata or {}).get(JOB_METADATA_KEY.encode())
    if raw is None:
        return None
    try:
        header = json.loads(raw)
    except ValueError:  # written by hand, or by another tool
        return None
    return header if isinstance(header, dict) else None
