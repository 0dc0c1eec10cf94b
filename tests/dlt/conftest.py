"""Fixtures of the dlt source's tests: an emulated account, and real dlt pipelines over it.

Every pipeline keeps its working folder and its destination under the test's ``tmp_path``,
so that the suite's key check (``tests/conftest.py``) greps them all after each test. dlt's
telemetry is off and its global folder is the test's own: nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt
import duckdb
import pyarrow as pa
import pytest

from batch_export.dlt import ITEMS, batch_export_source
from batch_export.frame import iter_batches
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.layout import JOBS_SCHEMA
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY

DESTINATIONS = ("duckdb", "delta", "iceberg")


@pytest.fixture(autouse=True)
def _dlt_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No telemetry, no global folder outside the test, no key in the environment."""
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt-data"))
    for name in (
        "GEONODE_SCRAPER_API_KEY",
        "SCRAPER_API_BASE_URL",
        "SOURCES__BATCH_EXPORT__API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    # dlt's log handler would keep the stderr it was made with, which pytest closes after a
    # test; dlt reuses the handler it finds, so it writes to the stderr of the moment.
    handlers = logging.getLogger("dlt").handlers
    if not handlers:
        handlers.append(logging.StreamHandler(_Stderr()))
    for handler in handlers:
        if type(handler) is logging.StreamHandler:  # not pytest's own capture handlers
            handler.stream = _Stderr()


class _Stderr:
    """Whatever ``sys.stderr`` is when written to."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def make_job(number: int, *, items: int = 5, failure_rate: float = 0.2) -> dict[str, Any]:
    """A finished job with links, HTML on odd jobs, and a field the schema does not know."""
    doc = generate_job(
        job_id=f"job-{number:02d}",
        items=items,
        seed=number,
        formats=("markdown", "html") if number % 2 else ("markdown",),
        markdown_bytes=120,
        links_per_item=3,
        failure_rate=failure_rate,
        created_at=f"2026-05-{20 + number:02d}T08:00:00Z",
    )
    doc["results"][0]["region"] = "eu"  # lands in `extra`
    return doc


@functools.cache
def account_docs() -> tuple[dict[str, Any], ...]:
    """Six finished jobs of 1 to 6 items, and one still processing."""
    docs = [make_job(number, items=number + 1) for number in range(6)]
    running = generate_job(job_id="job-running", items=2, processing_polls=50)
    return (*docs, running)


FINISHED = [doc["job_id"] for doc in account_docs() if "emulator" not in doc]


@pytest.fixture
def account() -> Iterator[Emulator]:
    """A fresh emulator serving the account, keyed with the canary."""
    with Emulator(jobs=account_docs(), api_key=CANARY_KEY) as emulator:
        yield emulator


@dataclass
class Lake:
    """A dlt pipeline into one destination, and how to read its two tables back."""

    kind: str
    pipeline: dlt.Pipeline
    root: Path

    def source(self, emulator: Emulator, **options: Any) -> Any:
        table_format = None if self.kind == "duckdb" else self.kind
        options = {"base_url": emulator.base_url, "api_key": CANARY_KEY, **options}
        return batch_export_source(max_retries=0, table_format=table_format, **options)

    def table(self, name: str) -> pa.Table:
        """The table as loaded, with the columns of its schema only (no dlt columns)."""
        schema = ITEM_SCHEMA if name == ITEMS else JOBS_SCHEMA
        if self.kind == "duckdb":
            return _duckdb_table(self.root / "warehouse.duckdb", name, schema)
        if self.kind == "delta":
            from dlt.common.libs.deltalake import get_delta_tables

            table = get_delta_tables(self.pipeline, name)[name].to_pyarrow_table()
        else:
            from dlt.common.libs.pyiceberg import get_iceberg_tables

            table = get_iceberg_tables(self.pipeline, name)[name].scan().to_arrow()
        return table.select(schema.names)

    def rows(self, name: str) -> list[dict[str, Any]]:
        """Every row of the table, sorted by its keys."""
        rows = self.table(name).to_pylist()
        return sorted(rows, key=lambda row: (row["job_id"], row.get("input_index", 0)))


def _duckdb_table(path: Path, name: str, schema: pa.Schema) -> pa.Table:
    columns = ", ".join(
        f"CAST({field.name} AS VARCHAR[]) AS {field.name}"
        if pa.types.is_list(field.type)
        else field.name
        for field in schema
    )
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.sql(f"SELECT {columns} FROM scraper.{name}").arrow().read_all()


def make_lake(kind: str, root: Path, name: str = "scraper") -> Lake:
    """A pipeline into ``kind`` (duckdb, or the filesystem destination in delta or iceberg)."""
    root.mkdir(parents=True, exist_ok=True)
    if kind == "duckdb":
        destination: Any = dlt.destinations.duckdb(str(root / "warehouse.duckdb"))
    else:
        destination = dlt.destinations.filesystem(str(root / "lake"))
    pipeline = dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(root / "pipelines"),
        destination=destination,
        dataset_name="scraper",
    )
    return Lake(kind=kind, pipeline=pipeline, root=root)


@pytest.fixture(params=DESTINATIONS)
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    """A pipeline into each destination in turn."""
    return make_lake(str(request.param), tmp_path)


@pytest.fixture
def duck(tmp_path: Path) -> Lake:
    """A pipeline into DuckDB."""
    return make_lake("duckdb", tmp_path)


def exported_rows(emulator: Emulator, job_ids: list[str]) -> list[dict[str, Any]]:
    """The rows that batch-export's own road reads for the jobs, sorted by their keys."""
    rows = [
        row
        for job_id in job_ids
        for batch in iter_batches(
            job_id, progress=False, base_url=emulator.base_url, api_key=CANARY_KEY
        )
        for row in batch.to_pylist()
    ]
    return sorted(rows, key=lambda row: (row["job_id"], row["input_index"]))


def job_paths(emulator: Emulator) -> list[str]:
    """The job pages the emulator was asked for (the listing left out), in order."""
    return [r.path for r in emulator.requests if r.path.startswith("/v1/batch/job-")]
