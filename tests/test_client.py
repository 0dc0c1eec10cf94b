from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest

from batch_export.errors import (
    AuthenticationError,
    InsecureTransportError,
    InsufficientBalanceError,
    InvalidInputError,
    JobNotFoundError,
    RequestRejectedError,
    ResponseShapeError,
    RetriesExhaustedError,
)
from batch_export.fetch.client import ApiClient, redact
from batch_export.fetch.exchange import Outgoing
from batch_export.fetch.job_id import check_job_id
from batch_export.fetch.retry import RetryPolicy
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, item, job_body, scripted_server

KEY = CANARY_KEY
OK = Answer(body=job_body("j1", [item(0)]))


def client_for(base_url: str, sleeps: list[float] | None = None, attempts: int = 4) -> ApiClient:
    return ApiClient(
        base_url=base_url,
        api_key=KEY,
        retry=RetryPolicy(attempts=attempts, base_delay=0.5, jitter=0.0),
        sleep=(sleeps if sleeps is not None else []).append,
        timeout=5,
    )


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (Answer(status=503, body={"code": "unavailable", "message": "busy"}), "503"),
        (Answer(status=502, body="<html><body><h1>502 Bad Gateway</h1></body></html>"), "502"),
        (Answer(status=500, body=b""), "500"),
        (Answer(status=504, body=b"gateway timeout"), "504"),
        (Answer(status=429, body={"code": "throttled", "message": "slow down"}), "429"),
        (Answer(body=job_body("j1", [item(0)]), cut_at=40), "network"),
    ],
)
def test_passing_failures_are_retried(failure: Answer, reason: str) -> None:
    sleeps: list[float] = []
    with scripted_server([failure, failure, OK]) as server:
        client = client_for(server.base_url, sleeps)
        page = client.fetch_page("j1", page=1, page_size=50)
    assert [r["input_index"] for r in page.results] == [0]
    assert sleeps == [0.5, 1.0]
    assert client.stats.to_dict() == {
        "requests": 3,
        "retries": 2,
        "retries_by_reason": {reason: 2},
    }


@pytest.mark.parametrize(
    ("header", "sleep"),
    [
        ("2", 2.0),
        ("0", 0.5),
        ("-3", 0.5),
        ("999999", 30.0),
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0.5),
    ],
)
def test_retry_after_is_honoured_within_bounds(header: str, sleep: float) -> None:
    sleeps: list[float] = []
    throttled = Answer(status=429, headers={"Retry-After": header}, body={"code": "throttled"})
    with scripted_server([throttled, OK]) as server:
        client_for(server.base_url, sleeps).fetch_page("j1", page=1, page_size=50)
    assert sleeps == [sleep]


@pytest.mark.parametrize(
    ("answer", "error", "message"),
    [
        (
            Answer(
                status=401,
                body={
                    "code": "unauthorized",
                    "message": "API key missing or invalid",
                    "correlation_id": "c-1",
                    "retryable": False,
                },
            ),
            AuthenticationError,
            "The API rejected the API key (HTTP 401: API key missing or invalid; correlation id "
            "c-1): check --api-key or GEONODE_SCRAPER_API_KEY.",
        ),
        (
            Answer(
                status=404,
                body={
                    "code": "job_not_found",
                    "message": "Batch job not found",
                    "correlation_id": "c-2",
                },
            ),
            JobNotFoundError,
            "The API has no such job (HTTP 404: Batch job not found; correlation id c-2): check "
            "the job id and the base URL; the provider may no longer keep old jobs.",
        ),
        (
            Answer(
                status=422,
                body={
                    "detail": [
                        {
                            "loc": ["query", "page_size"],
                            "msg": "must be <= 50",
                            "type": "value_error",
                        }
                    ]
                },
            ),
            RequestRejectedError,
            "The API refused the request (HTTP 422: query.page_size: must be <= 50).",
        ),
        (
            Answer(
                status=402,
                body={"code": "insufficient_balance", "message": "Top up", "correlation_id": "c-3"},
            ),
            InsufficientBalanceError,
            "The API refused the request for want of balance (HTTP 402: Top up; correlation id "
            "c-3): top up the account, then rerun.",
        ),
        (
            Answer(status=409, body="<html><head><style>p{}</style></head><p>Conflict</p></html>"),
            RequestRejectedError,
            "The API refused the request (HTTP 409: Conflict).",
        ),
        (
            Answer(status=400, body=b""),
            RequestRejectedError,
            "The API refused the request (HTTP 400: (empty body)).",
        ),
    ],
)
def test_final_answers_are_not_retried_and_say_what_came(
    answer: Answer, error: type[Exception], message: str
) -> None:
    sleeps: list[float] = []
    with scripted_server([answer, OK]) as server:
        with pytest.raises(error) as caught:
            client_for(server.base_url, sleeps).fetch_page("j1", page=1, page_size=50)
        assert len(server.seen) == 1
    assert str(caught.value) == message
    assert sleeps == []


def test_exhausted_retries_name_the_last_failure() -> None:
    with scripted_server(
        [Answer(status=503, body={"message": "down", "correlation_id": "c9"})]
    ) as server:
        with pytest.raises(RetriesExhaustedError) as caught:
            client_for(server.base_url, attempts=3).fetch_page("j1", page=2, page_size=50)
    assert str(caught.value) == (
        "The API answered HTTP 503: down; correlation id c9. Tried 3 times; the API or the "
        "network is not answering well: try again later, or raise --max-retries."
    )
    assert (caught.value.page, caught.value.job_id, caught.value.correlation_id) == (2, "j1", "c9")


def test_a_long_html_error_page_is_cut_to_an_excerpt() -> None:
    page = "<html><body>" + "Bad gateway. " * 100 + "</body></html>"
    with scripted_server([Answer(status=418, body=page)]) as server:
        with pytest.raises(RequestRejectedError) as caught:
            client_for(server.base_url).fetch_page("j1", page=1, page_size=50)
    assert len(str(caught.value)) < 260
    assert str(caught.value).endswith("...).")


def test_invalid_utf8_in_a_body_does_not_stop_the_export() -> None:
    body = job_body("j1", [item(0)])
    raw = __import__("json").dumps(body).replace("# Page 0", "caf\\u00e9 \\ud800").encode()
    raw = raw.replace(b"caf", b"caf\xff")
    with scripted_server([Answer(body=raw)]) as server:
        page = client_for(server.base_url).fetch_page("j1", page=1, page_size=50)
    # One U+FFFD for the byte that is not UTF-8, one for the lone surrogate: one value changed.
    assert page.results[0]["data"]["markdown"] == "caf\ufffd\u00e9 \ufffd"
    assert page.values_changed == 1


def test_key_is_sent_as_header_and_never_shown() -> None:
    with scripted_server([OK]) as server:
        client = client_for(server.base_url)
        client.fetch_page("j1", page=1, page_size=50)
    assert server.seen[0].headers["X-Api-Key"] == KEY
    assert KEY not in repr(client)
    assert redact(f"oops {KEY}", KEY) == "oops <hidden>"


def test_key_is_not_followed_to_another_host() -> None:
    with scripted_server([OK]) as elsewhere:
        moved = Answer(status=302, headers={"Location": elsewhere.base_url + "/v1/batch/j1"})
        with scripted_server([moved]) as server:
            with pytest.raises(RequestRejectedError) as caught:
                client_for(server.base_url).fetch_page("j1", page=1, page_size=50)
        assert elsewhere.seen == []
    assert "redirected to another host" in str(caught.value)


def test_same_host_redirect_is_followed() -> None:
    def script(number: int, path: str, query: dict[str, str]) -> Answer:
        if path == "/old/v1/batch/j1":
            return Answer(status=301, headers={"Location": "/v1/batch/j1?page=1&page_size=50"})
        return OK

    with scripted_server(script) as server:
        page = client_for(server.base_url + "/old").fetch_page("j1", page=1, page_size=50)
    assert page.results[0]["input_index"] == 0
    assert server.seen[1].headers["X-Api-Key"] == KEY


@pytest.mark.parametrize(
    ("base_url", "allowed"),
    [
        ("http://api.example.com", False),
        ("http://10.0.0.5:8080", False),
        ("http://127.0.0.1:8080", True),
        ("http://localhost:1", True),
        ("https://api.example.com", True),
    ],
)
def test_plain_http_only_to_loopback(base_url: str, allowed: bool) -> None:
    if allowed:
        ApiClient(base_url=base_url, api_key=KEY).close()
        return
    with pytest.raises(InsecureTransportError, match="--allow-insecure-http"):
        ApiClient(base_url=base_url, api_key=KEY)
    ApiClient(base_url=base_url, api_key=KEY, allow_insecure_http=True).close()


@pytest.mark.parametrize("base_url", ["ftp://x", "scraper.geonode.io", ""])
def test_base_url_must_be_http(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCRAPER_API_BASE_URL", base_url or "nope")
    with pytest.raises(InvalidInputError, match="is not an http"):
        ApiClient(base_url=base_url or None, api_key=KEY)


def test_missing_key_is_refused_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEONODE_SCRAPER_API_KEY", raising=False)
    with scripted_server([OK]) as server:
        with pytest.raises(InvalidInputError) as caught:
            ApiClient(base_url=server.base_url).fetch_page("j1", page=1, page_size=50)
        assert server.seen == []
    assert str(caught.value) == (
        "No API key: pass --api-key or set GEONODE_SCRAPER_API_KEY in the environment."
    )


@pytest.mark.parametrize("job_id", ["../x", "a/b", "?", "a b", "", "x" * 200, "j1\n", "%2e%2e"])
def test_job_ids_that_are_not_identifiers_are_refused(job_id: str) -> None:
    with pytest.raises(InvalidInputError, match="is not a plain identifier"):
        check_job_id(job_id)


@pytest.mark.parametrize("job_id", ["9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019", "job_1", "A"])
def test_plain_job_ids_pass(job_id: str) -> None:
    assert check_job_id(job_id) == job_id


@pytest.mark.parametrize("key", [KEY + "\n", KEY + "\r", "\x00" + KEY, KEY + "é", "k\x1bk"])
def test_a_key_that_cannot_be_a_header_is_refused_without_showing_it(key: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        ApiClient(base_url="http://127.0.0.1:9", api_key=key)
    assert caught.value.exit_code == 2
    assert KEY[:8] not in str(caught.value) and "k\x1bk" not in str(caught.value)


def test_an_echoed_key_is_hidden_in_every_field_of_the_error() -> None:
    echo = Answer(
        status=401,
        body={"code": f"c-{KEY}", "message": "x" * 190 + KEY, "correlation_id": KEY[3:20]},
    )
    with scripted_server([echo]) as server:
        with pytest.raises(AuthenticationError) as caught:
            client_for(server.base_url).fetch_page("j1", page=1, page_size=50)
    error = caught.value
    texts = [str(error), error.message, error.url or "", error.code or "", error.correlation_id]
    for text in texts:
        assert not any(KEY[i : i + 8] in str(text) for i in range(len(KEY) - 7)), text


def test_a_key_in_a_redirect_location_is_hidden() -> None:
    moved = Answer(status=302, headers={"Location": f"/v1/batch/j1?k={KEY}"})
    with scripted_server([moved, Answer(status=400, body="no")]) as server:
        with pytest.raises(RequestRejectedError) as caught:
            client_for(server.base_url).fetch_page("j1", page=1, page_size=50)
    assert KEY not in (caught.value.url or "") and "<hidden>" in (caught.value.url or "")


@pytest.mark.parametrize(
    ("size", "passes"), [(2000, True), (2001, False)], ids=["at-bound", "past-bound"]
)
def test_an_answer_past_the_size_bound_is_refused(size: int, passes: bool) -> None:
    raw = __import__("json").dumps(job_body("j1", [item(0)])).encode()
    raw = raw[:-1] + b" " * (size - len(raw)) + b"}"
    with scripted_server([Answer(body=raw)]) as server:
        client = ApiClient(
            base_url=server.base_url, api_key=KEY, max_response_bytes=2000, timeout=5
        )
        if passes:
            assert client.fetch_page("j1", page=1, page_size=50).results
            return
        with pytest.raises(ResponseShapeError) as caught:
            client.fetch_page("j1", page=1, page_size=50)
    assert "larger than the bound of 0.00190735 MB" in str(caught.value)
    assert "--max-response-mb" in str(caught.value)


def test_a_trickling_answer_is_cut_at_the_request_deadline() -> None:
    from tests.hostile import hostile_server, response
    from tests.hostile import trickle as trickling

    with hostile_server(
        trickling(response(headers={"Content-Length": "999"}, length=False), every=0.1)
    ) as server:
        client = ApiClient(
            base_url=server.base_url, api_key=KEY, retry=RetryPolicy(attempts=1), timeout=0.8
        )
        started = time.monotonic()
        with pytest.raises(RetriesExhaustedError) as caught:
            client.fetch_page("j1", page=1, page_size=50)
    assert time.monotonic() - started < 2.5
    assert "did not answer within the request deadline of 0.8 s" in str(caught.value)


def test_a_loopback_target_bypasses_any_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.255.255.1:3128")
    monkeypatch.setenv("http_proxy", "http://10.255.255.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with scripted_server([OK]) as server:
        page = client_for(server.base_url).fetch_page("j1", page=1, page_size=50)
    assert page.results[0]["input_index"] == 0


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout", float("nan")),
        ("timeout", 0),
        ("max_response_bytes", -1),
        ("timeout", float("inf")),
        ("timeout", True),
    ],
)
def test_option_values_that_are_not_finite_positive_numbers_are_refused(
    option: str, value: object
) -> None:
    with pytest.raises(InvalidInputError, match=f"for {option}"):
        ApiClient(base_url="http://127.0.0.1:9", api_key=KEY, **{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"detail": [{"loc": None, "msg": None}]}, "HTTP 422: invalid"),
        ({"detail": [{"loc": "query", "msg": 5}, 7, None]}, "HTTP 422: query: 5; 7"),
        ({"detail": [{"loc": [{"a": 1}, "page"], "msg": ["x"]}]}, "HTTP 422: page: invalid"),
        ({"message": {"deep": [1]}, "code": ["x"]}, "HTTP 422: (no message)"),
        ({"message": "\x1b[31mred"}, "HTTP 422: \\x1b[31mred"),
        ("<script>" * 50_000, "HTTP 422: (empty body)"),
        ("<p>a</p><style>x" * 20_000, "HTTP 422: a"),
        ("[" * 100_000, "HTTP 422: [[[["),
    ],
)
def test_odd_error_bodies_give_one_sentence(body: object, text: str) -> None:
    with scripted_server([Answer(status=422, body=body)]) as server:
        started = time.monotonic()
        with pytest.raises(RequestRejectedError) as caught:
            client_for(server.base_url).fetch_page("j1", page=1, page_size=50)
    assert text in str(caught.value)
    assert len(str(caught.value)) < 300 and time.monotonic() - started < 2


@pytest.mark.parametrize(
    "params",
    [
        {"page": 1, "page_size": 50},
        {"page": -3, "n": 10**30},
        {"a b": 1, "x": 2},
        {"é": 2},
        {"flag": True},
        {"status": "completed", "page": 1},
        {"start_date": "2026-01-01T00:00:00+01:00"},
        {"x": 1.5},
    ],
)
def test_a_request_query_is_what_urlencode_writes(params: dict[str, Any]) -> None:
    # Names and integers are written without urlencode (nothing to quote): the same text.
    url = "http://127.0.0.1:9/v1/batch/j1"
    assert Outgoing("GET", params, None, 200).target(url) == f"{url}?{urlencode(params)}"
