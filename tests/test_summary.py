from __future__ import annotations

import json

import pyarrow as pa

from batch_export.job import JobStatus
from batch_export.schema import ITEM_SCHEMA
from batch_export.summary import SummaryBuilder
from tests.scripted import job_body


def _row(
    index: int,
    status: str,
    code: str | None = None,
    http: int | None = 200,
    duration: int | None = 100,
    tokens: int = 1,
    retries: int = 0,
) -> dict[str, object]:
    return {
        "job_id": "j1",
        "input_index": index,
        "url": f"https://e.test/{index}",
        "status": status,
        "error_code": code,
        "http_status": http,
        "duration_ms": duration,
        "tokens_charged": tokens,
        "retry_count": retries,
    }


def _built() -> SummaryBuilder:
    builder = SummaryBuilder()
    first = [_row(0, "completed", duration=100), _row(1, "failed", "http_403", 403, 50, 0, 2)]
    second = [
        _row(2, "failed", "target_timeout", None, None, 0, 1),
        _row(3, "failed", "http_403", 403, 300, 0),
        _row(4, "cancelled", None, None, None, 0),
    ]
    for rows in (first, second):
        builder.add(pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA))
    return builder


def test_counts_accumulate_over_batches() -> None:
    job = JobStatus.from_response(
        job_body(
            "j1",
            [],
            token_summary={"tokens_charged_total": 2, "tokens_reserved": 0},
            invalid_urls=["htp://bad"],
        ),
        job_id="j1",
    )
    summary = _built().build(job_id="j1", job=job, output={"path": "o.csv", "format": "csv"})
    assert summary.rows == 5
    assert summary.by_status == {"failed": 3, "completed": 1, "cancelled": 1}
    assert list(summary.failure_codes.items()) == [("http_403", 2), ("target_timeout", 1)]
    assert summary.tokens == {"charged_total": 2, "reserved": 0, "charged_items": 1}
    assert summary.http_status == {"200": 1, "403": 2}
    assert summary.duration_ms == {"p50": 100, "p95": 300, "max": 300}
    assert summary.retry_count_total == 3
    assert summary.failed_urls == ["https://e.test/1", "https://e.test/2", "https://e.test/3"]
    assert summary.invalid_urls == ["htp://bad"]
    assert json.loads(summary.to_json())["failure_codes"] == {"http_403": 2, "target_timeout": 1}


def test_text_names_the_figures_and_flags_a_token_mismatch() -> None:
    job = JobStatus.from_response(
        job_body("j1", [], token_summary={"tokens_charged_total": 2, "tokens_reserved": 0}),
        job_id="j1",
    )
    text = _built().build(job_id="j1", job=job, output={"path": "o.csv", "format": "csv"}).to_text()
    assert text.splitlines()[0] == "Job j1 completed: 5 rows to o.csv (csv)"
    assert "  failures  http_403 2, target_timeout 1" in text
    assert "charged 2, items sum 1  (differs from the job's total), reserved 0" in text
    assert "p50 100 ms, p95 300 ms, max 300 ms" in text


def test_empty_export_has_no_durations() -> None:
    summary = SummaryBuilder().build(job_id="j1")
    assert summary.rows == 0
    assert summary.duration_ms == {"p50": None, "p95": None, "max": None}
    assert "duration" not in summary.to_text()
