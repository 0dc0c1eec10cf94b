"""Jobs to load into the table stores, and what a Parquet export of them holds.

Each case is a generated job document (links, HTML, failures, an undocumented field so that
``extra`` is not always null) turned into what the sync hands a store: a
:class:`~batch_export.sync.store.JobLoad` and the job's record batches, two items a batch so
that a load takes more than one. :func:`parquet_items` is the reference: the same batches
through the Parquet writer and read back.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from batch_export.export import Connection
from batch_export.flatten.items import flatten_items
from batch_export.job import JobStatus
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync import sync
from batch_export.sync.layout import parse_timestamp
from batch_export.sync.store import JobLoad
from batch_export.testing import generate_job
from batch_export.version import __version__
from batch_export.writers import open_writer

EXPORTED_AT = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAYS = ("2026-05-22T08:00:00Z", "2026-05-22T23:59:00Z", "2026-05-24T03:00:00Z")


def job_doc(number: int, *, items: int = 5, seed: int | None = None) -> dict[str, Any]:
    """Job ``job-<number>``: ``items`` items over one of three days, one item with extras."""
    doc = generate_job(
        job_id=f"job-{number}",
        items=items,
        seed=number if seed is None else seed,
        formats=("markdown", "html"),
        markdown_bytes=200,
        links_per_item=3,
        failure_rate=0.2,
        created_at=DAYS[number % len(DAYS)],
    )
    if doc["results"]:
        doc["results"][0]["screenshot_id"] = f"shot-{number}"  # lands in `extra`
    return doc


def batches_of(doc: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    """The job's items as the pipeline yields them: pages of two, lazily."""
    results = doc["results"]
    for start in range(0, len(results), 2):
        yield flatten_items(doc["job_id"], results[start : start + 2])


def load_of(doc: dict[str, Any], *, token: str = "token-1") -> JobLoad:
    """What the sync hands a store for ``doc``."""
    job = JobStatus.from_response(doc, job_id=doc["job_id"])
    created = parse_timestamp(doc["created_at"], name="created_at")
    assert created is not None
    return JobLoad(
        job=job,
        token=token,
        fingerprint={"status": doc["status"], "completed_at": doc["completed_at"]},
        created_at=created,
        exported_at=EXPORTED_AT,
        tool_version=__version__,
    )


def parquet_items(docs: Iterable[dict[str, Any]]) -> pa.Table:
    """Every item of ``docs`` as the Parquet export writes them, read back, sorted."""
    tables = []
    for doc in docs:
        sink = io.BytesIO()
        writer = open_writer("parquet", sink)
        for batch in batches_of(doc):
            writer.write(batch)
        writer.close()
        tables.append(pq.read_table(io.BytesIO(sink.getvalue())))
    return items_sorted(pa.concat_tables(tables))


def items_sorted(table: pa.Table) -> pa.Table:
    """``table``'s item columns, cast to ITEM_SCHEMA, sorted by job and input index."""
    table = table.select(ITEM_SCHEMA.names)
    return table.cast(ITEM_SCHEMA).sort_by([("job_id", "ascending"), ("input_index", "ascending")])


def with_json_parsed(table: pa.Table, column: str = "extra") -> list[dict[str, Any]]:
    """Rows of ``table`` with ``column`` parsed: stores that keep JSON as JSON reformat it."""
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        row[column] = None if row[column] is None else json.loads(row[column])
    return rows


def parquet_sync_items(connection: Connection, root: Path) -> pa.Table:
    """The reference for an end-to-end sync: the same account synced to a Parquet dataset."""
    report = sync(root, connection=connection)
    assert report.exit_code == 0
    items = ds.dataset(root / "items", format="parquet", partitioning="hive").to_table()
    return items_sorted(items)


def rows_per_job(items: pa.Table) -> dict[str, int]:
    """How many rows each job has in ``items``."""
    counted = items.group_by("job_id").aggregate([("job_id", "count")])
    return dict(
        zip(counted["job_id"].to_pylist(), counted["job_id_count"].to_pylist(), strict=True)
    )


def nul_doc() -> dict[str, Any]:
    """A job whose scraped text holds NUL: a URL, a page, a message, a link, an extra field's
    key and value, a header of the job's config."""
    doc = job_doc(7, items=3)
    first, second = doc["results"][0], doc["results"][1]
    first["url"] += "?q=a\x00b"
    first["data"]["markdown"] = "before\x00after\x00"
    first["data"]["links"] = ["https://a.example/\x00", "https://b.example/"]
    first["odd\x00key"] = "a value\x00with NUL"
    second.update(status="failed", error_code="TIMEOUT", error_message="cut\x00short", data=None)
    doc["batch_config"] = {"headers": {"X-Note": "n\x00l"}}
    statuses = [item["status"] for item in doc["results"]]
    doc["completed_urls"], doc["failed_urls"] = (
        statuses.count("completed"),
        statuses.count("failed"),
    )
    return doc


def without_nul(value: Any) -> Any:
    """``value`` with the documented rule applied: NUL becomes U+FFFD, in keys too."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    if isinstance(value, dict):
        return {without_nul(k): without_nul(v) for k, v in value.items()}
    return value
