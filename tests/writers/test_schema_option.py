"""Every writer takes a ``schema`` for tables that add columns to the item schema (scrape's)."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from batch_export.schema import SCRAPE_SCHEMA
from batch_export.writers import FORMATS, open_writer

ROWS = [
    {"line": 1, "job_id": "j", "input_index": 0, "url": "https://a.example/", "attempts": 2},
    {"line": 2, "url": "not a url", "status": "invalid", "links": ["x"], "attempts": 0},
]


def _columns(fmt: str, content: bytes) -> tuple[list[str], list[object]]:
    """The column names of a written file, and its `attempts` values."""
    if fmt == "parquet":
        table = pq.read_table(io.BytesIO(content))
        return table.column_names, table.column("attempts").to_pylist()
    if fmt == "csv":
        table = pa_csv.read_csv(io.BytesIO(content))
        return table.column_names, table.column("attempts").to_pylist()
    rows = [json.loads(line) for line in content.splitlines()]
    return list(rows[0]), [row["attempts"] for row in rows]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_writer_given_the_scrape_schema_writes_its_columns(fmt: str) -> None:
    sink = io.BytesIO()
    writer = open_writer(fmt, sink, schema=SCRAPE_SCHEMA)
    writer.write(pa.RecordBatch.from_pylist(ROWS, schema=SCRAPE_SCHEMA))
    writer.close()
    names, attempts = _columns(fmt, sink.getvalue())
    assert names == SCRAPE_SCHEMA.names
    assert attempts == [2, 0]


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_writer_given_the_scrape_schema_refuses_batches_of_another(fmt: str) -> None:
    sink = io.BytesIO()
    writer = open_writer(fmt, sink, schema=SCRAPE_SCHEMA)
    with pytest.raises(ValueError, match="Expected a batch of the writer's schema"):
        writer.write(pa.RecordBatch.from_pylist([{"job_id": "j"}], schema=SCRAPE_SCHEMA.remove(0)))
    writer.write(pa.RecordBatch.from_pylist(ROWS, schema=SCRAPE_SCHEMA))
    writer.close()
    # The refused batch left nothing behind: the file holds the good batch's rows only.
    assert _columns(fmt, sink.getvalue()) == (SCRAPE_SCHEMA.names, [2, 0])
