from __future__ import annotations

import json
from typing import Any

import pytest

from batch_export.errors import ResponseShapeError, TransientApiError
from batch_export.job import COUNTERS, MAX_JOB_ITEMS, JobStatus, ResultPage, decode_json
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
        ({"pending_urls": None, "total_urls": None}, 3),  # as the SDK reads them: missing is 0
        (dict.fromkeys(("total_urls", *COUNTERS)), 0),
    ],
)
def test_expected_items(fields: dict[str, Any], expected: int) -> None:
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
        (b'{"a": ' * 65 + b"1" + b"}" * 65, ResponseShapeError),
        (b'{"results": [], "x": ' + b"[" * 490 + b"]" * 490 + b"}", ResponseShapeError),
        (b'{"total_urls": 1', TransientApiError),
        (b'{"total_urls": 1} x', TransientApiError),
        (b"\xef\xbb\xbf{}", TransientApiError),
        (b"", TransientApiError),
    ],
    ids=[
        "100k-arrays",
        "5000-objects",
        "65-objects",
        "490-in-a-field",
        "cut",
        "garbage",
        "bom",
        "",
    ],
)
def test_json_that_cannot_be_read_is_an_error_of_the_tree(
    content: bytes, error: type[Exception]
) -> None:
    with pytest.raises(error) as caught:
        decode_json(content, "http://127.0.0.1/v1/batch/j1")
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_nesting_is_bounded_at_64_levels_the_answer_counted() -> None:
    def nested(levels: int) -> bytes:  # an answer whose `x` makes it `levels` deep
        return b'{"results": [], "x": ' + b"[" * (levels - 1) + b"]" * (levels - 1) + b"}"

    assert decode_json(nested(64), "u")["results"] == []
    with pytest.raises(ResponseShapeError) as caught:
        decode_json(nested(65), "u")
    assert str(caught.value) == (
        "Expected an answer nested at most 64 levels deep (arrays and objects), got its `x` "
        "nested deeper: batch-export reads no deeper; check the base URL."
    )


@pytest.mark.parametrize(
    ("content", "value", "changed"),
    [
        (b'{"seed": 1180591620717411303424}', {"seed": 2**70}, {}),
        (b'{"seed": -36893488147419103232}', {"seed": -(2**65)}, {}),
        (
            b'{"total_urls": NaN, "r": [Infinity, -Infinity]}',
            {"total_urls": None, "r": [None] * 2},
            3,
        ),
        (b'{"r": 1e400, "s": -1e999}', {"r": None, "s": None}, 2),
        (b'{"r": 1' + b"0" * 5000 + b"}", {"r": None}, 1),
        (b'{"t": "a\\ud800b", "u": "\\udfff"}', {"t": "a\ufffdb", "u": "\ufffd"}, 2),
        (b'{"t": "a\xffb\xfe", "\xc3": 1}', {"t": "a\ufffdb\ufffd", "\ufffd": 1}, 2),
        (b'{"t": "\\ud83d\\ude00 \xef\xbf\xbd"}', {"t": "\U0001f600 \ufffd"}, {}),
    ],
    ids=[
        "2**70",
        "-2**65",
        "nan-infinity",
        "1e400",
        "5001-digits",
        "lone-surrogates",
        "not-utf8",
        "valid",
    ],
)
def test_values_are_kept_whole_or_changed_by_their_rule_and_counted(
    content: bytes, value: dict[str, Any], changed: int | dict[str, int]
) -> None:
    decoded = decode_json(content, "http://127.0.0.1/v1/batch/j1")
    assert decoded == value
    assert all(type(decoded[k]) is type(v) for k, v in value.items())  # 2**70 is no float
    counted = getattr(decoded, "values_changed", {})
    assert (sum(counted.values()) if isinstance(changed, int) else counted) == changed


def test_changed_values_are_counted_where_they_land() -> None:
    body = json.dumps(job_body("j1", [item(0, x="NAN_HERE")], batch_config={"r": "NAN_HERE"}))
    content = body.replace('"NAN_HERE"', "NaN").encode()
    page = ResultPage.from_response(decode_json(content, "u"), job_id="j1", page=1, page_size=50)
    assert (page.job.values_changed, page.values_changed) == (1, 1)
    assert page.job.batch_config == {"r": None} and page.results[0]["x"] is None
    assert page.job.to_dict()["values_changed"] == 1


def test_a_deep_page_given_as_a_dict_is_refused_too() -> None:
    deep: Any = []
    for _ in range(70):
        deep = [deep]
    with pytest.raises(ResponseShapeError, match="got its `results` nested deeper"):
        ResultPage.from_response(
            job_body("j1", [item(0, x=deep)]), job_id="j1", page=1, page_size=5
        )
    with pytest.raises(ResponseShapeError, match="got its `token_summary` nested deeper"):
        JobStatus.from_response(job_body("j1", [], token_summary={"x": deep}), job_id="j1")


def test_figures_come_back_as_the_same_status() -> None:
    body = job_body("j1", [item(0)], invalid_urls=["htp://x"], batch_config={"seed": 2**70})
    job = JobStatus.from_response(body | {"region": "eu"}, job_id="j1")
    assert JobStatus.from_figures(json.loads(json.dumps(job.to_dict()))) == job


@pytest.mark.parametrize(
    ("figures", "message"),
    [
        ("x", "Expected a job's figures with a `job_id` string, got 'x'."),
        ({"job_id": 5}, "Expected a job's figures with a `job_id` string, got a JSON object."),
        ({"job_id": "j1", "total_urls": "3"}, "Expected `total_urls` to be an integer from 0"),
        ({"job_id": "j1", "tokens_reserved": -1}, "Expected `tokens_reserved` to be an integer"),
        ({"job_id": "j1", "extra": [1]}, "Expected `extra` to be a JSON object for job j1"),
        ({"job_id": "j1", "values_changed": 1.5}, "Expected `values_changed` to be an integer"),
        ({"job_id": "j1", "batch_config": {"a": [[[[]]]] * 1}}, None),
    ],
)
def test_figures_that_do_not_fit_are_named(figures: object, message: str | None) -> None:
    if message is None:
        assert JobStatus.from_figures(figures).batch_config == {"a": [[[[]]]]}
        return
    with pytest.raises(ResponseShapeError) as caught:
        JobStatus.from_figures(figures)
    assert str(caught.value).startswith(message)
