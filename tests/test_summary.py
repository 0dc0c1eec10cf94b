from __future__ import annotations

import json

import pyarrow as pa
import pytest

from batch_export.job import JobStatus
from batch_export.schema import ITEM_SCHEMA
from batch_export.summary.counts import DURATION_BIN_EDGES_MS, Summary, SummaryBuilder
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


@pytest.mark.parametrize(
    ("durations", "counts"),
    [
        ([], {}),
        ([0, 9], {0: 2}),
        ([10, 19, 20], {1: 2, 2: 1}),
        ([999, 1_000, 1_999], {6: 1, 7: 2}),
        ([99_999, 100_000, 10**9], {12: 1, 13: 2}),
        ([-5], {0: 1}),  # the API's nonsense still counts, in the first bin
    ],
)
def test_durations_fall_into_fixed_bins(durations: list[int], counts: dict[int, int]) -> None:
    builder = SummaryBuilder()
    rows = [_row(index, "completed", duration=value) for index, value in enumerate(durations)]
    builder.add(pa.RecordBatch.from_pylist([*rows, _row(99, "failed", duration=None)],
                                           schema=ITEM_SCHEMA))  # fmt: skip
    histogram = builder.build(job_id="j1").duration_histogram
    assert histogram["edges_ms"] == list(DURATION_BIN_EDGES_MS)
    assert histogram["counts"] == [counts.get(b, 0) for b in range(len(DURATION_BIN_EDGES_MS))]


def test_histogram_accumulates_over_batches() -> None:
    counts = _built().build(job_id="j1").duration_histogram["counts"]
    assert counts[3:6] == [1, 1, 1] and sum(counts) == 3  # 50, 100 and 300 ms


def test_failure_examples_keep_the_first_item_of_each_code() -> None:
    builder = SummaryBuilder()
    rows = [
        _row(0, "failed", "http_403") | {"error_message": "first"},
        _row(1, "failed", "http_403") | {"error_message": "second"},
        _row(2, "failed", "dns") | {"error_message": "x" * 600},
    ]
    builder.add(pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA))
    examples = builder.build(job_id="j1").failure_examples
    assert examples == {
        "http_403": {"url": "https://e.test/0", "error_message": "first"},
        "dns": {"url": "https://e.test/2", "error_message": "x" * 500},
    }


def test_repr_is_a_few_readable_lines() -> None:
    summary = _built().build(job_id="j1")
    assert repr(summary) == (
        "Summary(job_id='j1', job_status=None, rows=5,\n"
        "        by_status={'failed': 3, 'completed': 1, 'cancelled': 1},\n"
        "        failure_codes={'http_403': 2, 'target_timeout': 1},\n"
        "        tokens={'charged_total': None, 'reserved': None, 'charged_items': 1})"
    )
    many = Summary(job_id="j2", failure_codes={f"c{n}": 1 for n in range(8)})
    assert "'c4': 1, ... 3 more}" in repr(many)


def test_frames_hold_the_counts() -> None:
    frames = _built().build(job_id="j1").frames
    assert frames.failure_codes[["error_code", "items", "share"]].to_dict("list") == {
        "error_code": ["http_403", "target_timeout"],
        "items": [2, 1],
        "share": [0.4, 0.2],
    }
    # Neither is a code the provider names: no verdict, no meaning, kept as they came.
    assert frames.failure_codes[["resubmit", "meaning"]].isna().all().all()
    assert frames.by_status["status"].tolist() == ["failed", "completed", "cancelled"]
    assert frames.http_status[["http_status", "items"]].to_dict("list") == {
        "http_status": [200, 403],
        "items": [1, 2],
    }
    assert str(frames.http_status["http_status"].dtype) == "int64"
    histogram = frames.duration_histogram
    assert histogram["items"].sum() == 3 and histogram["to_ms"].isna().tolist()[-1]


def test_an_empty_summary_has_empty_frames() -> None:
    frames = SummaryBuilder().build(job_id="j1").frames
    assert len(frames.failure_codes) == len(frames.by_status) == len(frames.http_status) == 0
    assert list(frames.failure_codes.columns) == [
        "error_code",
        "items",
        "share",
        "resubmit",
        "meaning",
    ]


def test_from_dict_gives_back_the_summary() -> None:
    summary = _built().build(job_id="j1", output={"path": "o.csv", "format": "csv"})
    assert Summary.from_dict(json.loads(summary.to_json())) == summary
