"""Helpers for the writer tests: record batches from row dicts, golden files, row strategies."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from batch_export.schema import ITEM_SCHEMA
from batch_export.writers import Writer, open_writer

GOLDEN = Path(__file__).resolve().parent / "golden"
# Set BATCH_EXPORT_UPDATE_GOLDEN=1 to rewrite the expected files from the current writers
# (then read the diff before committing it).
UPDATE_GOLDEN = os.environ.get("BATCH_EXPORT_UPDATE_GOLDEN") == "1"

Row = dict[str, Any]


def make_batch(rows: list[Row]) -> pa.RecordBatch:
    """A record batch of ITEM_SCHEMA; keys left out of a row are null."""
    return pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA)


def golden_rows() -> list[Row]:
    """The golden input: every column present in every row."""
    rows: list[Row] = json.loads((GOLDEN / "input.json").read_text(encoding="utf-8"))
    return rows


def write_bytes(fmt: str, batches: list[pa.RecordBatch], **options: Any) -> bytes:
    """What the writer of ``fmt`` writes for ``batches``."""
    sink = io.BytesIO()
    writer: Writer = open_writer(fmt, sink, **options)
    for batch in batches:
        writer.write(batch)
    writer.close()
    return sink.getvalue()


def check_golden(name: str, produced: bytes) -> None:
    """Assert ``produced`` equals the golden file ``name`` byte for byte."""
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.write_bytes(produced)
    assert produced == path.read_bytes(), f"output differs from {path}"


# Arrow holds valid UTF-8 only, so lone surrogates cannot occur in a batch.
text = st.text(st.characters(codec="utf-8"), max_size=40)
# Bias towards the characters that break naive CSV and JSON writers.
tricky_text = st.one_of(
    text,
    st.lists(
        st.sampled_from(["\n", "\r", "\r\n", '"', ",", "'", "=", "-", "+", "@", "\t", "\x00"]),
        max_size=6,
    ).map("".join),
)
maybe_text = st.none() | tricky_text
int32 = st.integers(-(2**31), 2**31 - 1)
int64 = st.integers(-(2**63), 2**63 - 1)

rows = st.fixed_dictionaries(
    {
        "job_id": maybe_text,
        "input_index": st.none() | int64,
        "url": maybe_text,
        "status": maybe_text,
        "error_code": maybe_text,
        "error_message": maybe_text,
        "markdown": maybe_text,
        "html": maybe_text,
        "links": st.none() | st.lists(st.none() | tricky_text, max_size=4),
        "http_status": st.none() | int32,
        "duration_ms": st.none() | int64,
        "retry_count": st.none() | int32,
        "tokens_charged": st.none() | int64,
        "extra": maybe_text,
    }
)
row_lists = st.lists(rows, max_size=8)
