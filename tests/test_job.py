from __future__ import annotations

from typing import Any

import pytest

from batch_export.errors import ResponseShapeError, TransientApiError
from batch_export.job import MAX_JOB_ITEMS, JobStatus, ResultPage, decode_json
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
            "Expected `total_urls` to be an integer from 0 to 1000000 for job j1, got -1.",
        ),
        (
            {"job_id": "j1", "status": "completed", "completed_urls": "3"},
            "Expected `completed_urls` to be an integer from 0 to 1000000 for job j1, got '3'.",
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


def test_an_answer_for_another_job_is_refused() -> None:
    with pytest.raises(ResponseShapeError) as caught:
        JobStatus.from_response(job_body("other\x1b[31m", []), job_id="j1")
    assert str(caught.value) == (
        "The API answered for job 'other\\x1b[31m' when asked for job 'j1': its answer cannot "
        "be used; check the base URL (a proxy or cache in front of the API may mix up jobs)."
    )
    assert caught.value.exit_code == 7


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("total_urls", MAX_JOB_ITEMS + 1, "Expected `total_urls` to be an integer from 0 to"),
        ("pending_urls", 10**10, "got 10000000000."),
        (
            "failed_urls",
            True,
            "Expected `failed_urls` to be an integer from 0 to 1000000 for job j1, got True.",
        ),
        ("cancelled_urls", 10**40, "got a huge int."),
        ("completed_urls", 1.0, "got 1.0."),
        ("invalid_urls", 3, "Expected `invalid_urls` to be a list of at most 1000000 strings"),
        ("invalid_urls", {"a": 1}, "got a JSON object."),
        ("invalid_urls", [1], "got a JSON array."),
        (
            "batch_config",
            [],
            "Expected `batch_config` to be a JSON object for job j1, got a JSON array.",
        ),
        (
            "token_summary",
            "x" * 500,
            "Expected `token_summary` to be a JSON object for job j1, got 'xxxx",
        ),
        (
            "token_summary",
            {"tokens_reserved": 2**60},
            "Expected `tokens_reserved` to be an integer from 0 to 9007199254740991",
        ),
        (
            "status",
            "s" * 5000,
            "Expected `status` to be a string of at most 1000 characters "
            "for job j1, got 5000 characters.",
        ),
        ("created_at", 5, "Expected `created_at` to be a string"),
        ("job_id", 7, "The API answered for job 7 when asked for job 'j1'"),
    ],
)
def test_every_field_fits_or_is_named(field: str, value: object, message: str) -> None:
    body = job_body("j1", [])
    body[field] = value
    with pytest.raises(ResponseShapeError) as caught:
        JobStatus.from_response(body, job_id="j1")
    assert message in str(caught.value)
    assert len(str(caught.value)) < 300
    assert f"`{field}`" in str(caught.value) or field in ("job_id", "token_summary")


def test_a_bounded_counter_is_taken() -> None:
    body = job_body("j1", [], total_urls=MAX_JOB_ITEMS, pending_urls=MAX_JOB_ITEMS)
    assert JobStatus.from_response(body, job_id="j1").total_urls == MAX_JOB_ITEMS


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"[" * 100_000 + b"]" * 100_000, ResponseShapeError),
        (b'{"a": ' * 5000 + b"1" + b"}" * 5000, ResponseShapeError),
        (b'{"total_urls": NaN}', TransientApiError),
        (b'{"total_urls": -Infinity}', TransientApiError),
        (b'{"x": 1' + b"0" * 5000 + b"}", TransientApiError),
    ],
    ids=["deep-array", "deep-object", "nan", "infinity", "int-past-4300-digits"],
)
def test_json_that_python_cannot_hold_is_an_error_of_the_tree(
    content: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error):
        decode_json(content, "http://127.0.0.1/v1/batch/j1")
