from __future__ import annotations

from typing import Any

import pytest

from batch_export.errors import ResponseShapeError
from batch_export.job import JobStatus, ResultPage
from tests.scripted import item, job_body


def test_reads_the_documented_fields() -> None:
    body = job_body("j1", [item(0)], status="failed", invalid_urls=["htp://x"])
    job = JobStatus.from_response(body, job_id="j1")
    assert job.status == "failed"
    assert job.is_terminal
    assert job.expected_items == 1
    assert job.invalid_urls == ("htp://x",)
    assert job.tokens_charged_total == 1
    assert job.tokens_reserved == 0
    assert job.extra == {}


def test_unknown_fields_are_kept_not_dropped() -> None:
    body = job_body(
        "j1",
        [],
        priority="high",
        token_summary={"tokens_charged_total": 0, "tokens_reserved": 0, "cap": 9},
    )
    job = JobStatus.from_response(body, job_id="j1")
    assert job.extra == {"priority": "high", "token_summary": {"cap": 9}}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, 3),
        ({"pending_urls": None}, 5),  # a counter missing: fall back to total_urls
        ({"pending_urls": None, "total_urls": None}, None),
    ],
)
def test_expected_items(fields: dict[str, Any], expected: int | None) -> None:
    body = job_body("j1", [], completed_urls=2, failed_urls=1, total_urls=5)
    body.update(fields)
    assert JobStatus.from_response(body, job_id="j1").expected_items == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "Expected a JSON object from the status endpoint, got list."),
        (
            {"job_id": "j1", "status": "completed", "total_urls": -1},
            "Expected `total_urls` to be a non-negative integer for job j1, got -1.",
        ),
        (
            {"job_id": "j1", "status": "completed", "completed_urls": "3"},
            "Expected `completed_urls` to be a non-negative integer for job j1, got '3'.",
        ),
    ],
)
def test_bad_job_fields_are_clear_errors(body: object, message: str) -> None:
    with pytest.raises(ResponseShapeError) as caught:
        JobStatus.from_response(body, job_id="j1")
    assert str(caught.value) == message


def test_missing_results_is_a_clear_error() -> None:
    body = job_body("j1", [])
    del body["results"]
    with pytest.raises(ResponseShapeError) as caught:
        ResultPage.from_response(body, job_id="j1", page=2, page_size=50)
    assert str(caught.value) == "Expected a `results` list in page 2 of job j1, got nothing."


@pytest.mark.parametrize("bad_index", [None, "3", -1, 1.0, True])
def test_input_index_must_be_a_non_negative_integer(bad_index: object) -> None:
    page = ResultPage.from_response(
        job_body("j1", [item(0, input_index=bad_index)]), job_id="j1", page=1, page_size=50
    )
    with pytest.raises(ResponseShapeError, match="Expected an integer `input_index` in item 0"):
        page.input_indexes()


def test_item_must_be_an_object() -> None:
    with pytest.raises(ResponseShapeError, match="Expected item 1 of page 1 to be a JSON object"):
        ResultPage.from_response(job_body("j1", [item(0), "x"]), job_id="j1", page=1, page_size=5)
