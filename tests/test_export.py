"""End to end over real HTTP: the emulator serves sample_data/, the library exports it."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

import batch_export
from batch_export.errors import JobNotFinishedError
from batch_export.export import Connection, export
from batch_export.frame import summarize
from batch_export.schema import COLUMN_NAMES, SCHEMA_VERSION
from batch_export.summary.report import render_report
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY, SAMPLE_DATA, SMALL_JOB


def served(name: str = "small-job.json") -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((SAMPLE_DATA / name).read_text())
    return doc


def expected_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows the schema promises for a served job, computed from the served JSON."""
    rows = []
    for it in doc["results"]:
        data, meta = it.get("data") or {}, it.get("metadata") or {}
        rows.append(
            {
                "job_id": doc["job_id"],
                "input_index": it["input_index"],
                "url": it["url"],
                "status": it["status"],
                "error_code": it.get("error_code"),
                "error_message": it.get("error_message"),
                "markdown": data.get("markdown"),
                "html": data.get("html"),
                "links": data.get("links"),
                "http_status": meta.get("http_status"),
                "duration_ms": meta.get("duration_ms"),
                "retry_count": meta.get("retry_count"),
                "tokens_charged": meta.get("tokens_charged"),
                "extra": None,
            }
        )
    return rows


def read_back(path: Path, fmt: str) -> list[dict[str, Any]]:
    if fmt == "parquet":
        table = pq.read_table(path)
        assert table.schema.names == list(COLUMN_NAMES)
        return table.to_pylist()
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMN_NAMES
        return [_typed_csv_row(row) for row in reader]


def _typed_csv_row(row: dict[str, str]) -> dict[str, Any]:
    ints = {"input_index", "http_status", "duration_ms", "retry_count", "tokens_charged"}
    typed: dict[str, Any] = {}
    for name, value in row.items():
        if value == "":
            typed[name] = None  # CSV has one null: the empty field
        elif name in ints:
            typed[name] = int(value)
        elif name == "links":
            typed[name] = json.loads(value)
        else:
            typed[name] = value
    return typed


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_each_format_reads_back_as_served(sample_api: Emulator, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"small.{fmt}"
    summary = export(SMALL_JOB, out, base_url=sample_api.base_url, api_key=CANARY_KEY, page_size=7)
    doc = served()
    assert read_back(out, fmt) == expected_rows(doc)
    assert summary.rows == len(doc["results"])
    assert summary.by_status == dict(Counter(it["status"] for it in doc["results"]))
    failed = [it for it in doc["results"] if it["status"] == "failed"]
    assert summary.failure_codes == dict(Counter(it["error_code"] for it in failed))
    assert summary.tokens == {
        "charged_total": doc["token_summary"]["tokens_charged_total"],
        "reserved": doc["token_summary"]["tokens_reserved"],
        "charged_items": sum(it["metadata"]["tokens_charged"] or 0 for it in doc["results"]),
    }
    assert summary.invalid_urls == doc["invalid_urls"]
    assert summary.failed_urls == [it["url"] for it in failed]
    assert summary.output == {"path": str(out), "format": fmt}


def test_summary_and_failed_urls_files(sample_api: Emulator, tmp_path: Path) -> None:
    summary = export(
        SMALL_JOB,
        tmp_path / "o.parquet",
        base_url=sample_api.base_url,
        api_key=CANARY_KEY,
        summary_path=tmp_path / "s.json",
        failed_urls_path=tmp_path / "failed.txt",
    )
    assert json.loads((tmp_path / "s.json").read_text()) == summary.to_dict()
    failed = [it["url"] for it in served()["results"] if it["status"] == "failed"]
    assert (tmp_path / "failed.txt").read_text().splitlines() == failed
    assert len(failed) >= 3


def test_a_processing_job_is_waited_for(tmp_path: Path) -> None:
    doc = generate_job(job_id="slow", items=40, processing_polls=3, seed=3)
    with Emulator(jobs=[doc], api_key=CANARY_KEY) as emulator:
        with pytest.raises(JobNotFinishedError):
            export(
                "slow",
                tmp_path / "a.jsonl",
                base_url=emulator.base_url,
                api_key=CANARY_KEY,
                wait=False,
            )
        summary = export(
            "slow", tmp_path / "b.jsonl", base_url=emulator.base_url, api_key=CANARY_KEY
        )
    assert summary.rows == 40
    assert summary.job_status == doc["status"]
    assert not (tmp_path / "a.jsonl").exists()
    assert read_back(tmp_path / "b.jsonl", "jsonl") == expected_rows(doc)


@pytest.mark.parametrize("concurrency", [1, 4, 16])
def test_output_is_the_same_at_any_concurrency(tmp_path: Path, concurrency: int) -> None:
    doc = generate_job(job_id="big", items=1000, seed=5, markdown_bytes=300)
    with Emulator(jobs=[doc], api_key=CANARY_KEY) as emulator:
        out = tmp_path / "big.jsonl"
        export("big", out, base_url=emulator.base_url, api_key=CANARY_KEY, concurrency=concurrency)
    assert read_back(out, "jsonl") == expected_rows(doc)


def test_the_key_never_shows_in_a_repr() -> None:
    connection = Connection(api_key=CANARY_KEY)
    assert CANARY_KEY not in repr(connection)
    assert CANARY_KEY not in repr(connection.client(sleep=lambda _: None))


def test_a_parquet_export_carries_its_jobs_header(sample_api: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "small.parquet"
    summary = export(SMALL_JOB, out, base_url=sample_api.base_url, api_key=CANARY_KEY)
    metadata = pq.read_schema(out).metadata
    header = json.loads(metadata[b"batch_export.job"])
    doc = served()
    assert header["job_id"] == SMALL_JOB and header["status"] == doc["status"]
    assert header["total_urls"] == doc["total_urls"]
    assert header["tokens_charged_total"] == doc["token_summary"]["tokens_charged_total"]
    assert header["batch_config"] == doc["batch_config"]
    assert metadata[b"batch_export.tool_version"] == batch_export.__version__.encode()
    assert metadata[b"batch_export.schema_version"] == str(SCHEMA_VERSION).encode()
    # The report of the file alone now knows the job's status and tokens.
    again = summarize(out)
    assert again.job_status == doc["status"] == summary.job_status
    assert again.tokens == summary.tokens
    assert f"<h2>Job <code>{SMALL_JOB}</code>: {doc['status']}</h2>" in render_report(again)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_csv_and_jsonl_summaries_know_only_the_rows(
    sample_api: Emulator, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"small.{fmt}"
    export(SMALL_JOB, out, base_url=sample_api.base_url, api_key=CANARY_KEY)
    assert summarize(out).job_status is None
