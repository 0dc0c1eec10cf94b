from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from batch_export.errors import (
    ApiError,
    AuthenticationError,
    InsufficientBalanceError,
    JobNotFoundError,
    RequestRejectedError,
    RetriesExhaustedError,
    TransientApiError,
)
from batch_export.fetch.client import ApiClient
from batch_export.fetch.retry import RetryPolicy, call_with_retries, is_retried, parse_retry_after
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, item, job_body, scripted_server

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("7", 7.0),
        ("1.5", 1.5),
        (" 3 ", 3.0),
        ("0", None),
        ("-5", None),
        ("nan", None),
        ("soon", None),
        ("", None),
        ("86400", 86400.0),
        ("1e12", 1e12),
        ("inf", None),
        ("-inf", None),
        ("1e999", None),
        ("9" * 500, None),
        (
            "Fri, 31 Dec 9999 23:59:59 GMT",
            (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC) - NOW).total_seconds(),
        ),
        ("Mon, 01 Jan 0001 00:00:00 +2359", None),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), None),
        ("Sun, 29 Nov 2026 12:00:10 GMT", 10.0),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    ("retry_number", "hint", "delay"),
    [
        (1, None, 0.5),
        (2, None, 1.0),
        (3, None, 2.0),
        (10, None, 30.0),  # capped by max_delay
        (1, 4.0, 4.0),  # the server's hint wins
        (1, 0.0, 0.5),  # zero is no hint
        (1, 1e9, 120.0),  # a hostile hint is capped
    ],
)
def test_delay_follows_hint_backoff_and_caps(
    retry_number: int, hint: float | None, delay: float
) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, jitter=0.0, retry_after_cap=120.0)
    assert policy.delay(retry_number, hint) == delay


def test_jitter_spreads_within_bounds() -> None:
    policy = RetryPolicy(base_delay=1.0, jitter=0.5)
    delays = {policy.backoff(1, rng=random.Random(seed)) for seed in range(50)}
    assert len(delays) > 40
    assert all(0.5 <= d <= 1.5 for d in delays)


@pytest.mark.parametrize("bad", [{"attempts": 0}, {"base_delay": -1.0}, {"jitter": -0.1}])
def test_policy_refuses_nonsense(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**bad)  # type: ignore[arg-type]


class Script:
    """Raises the scripted errors in turn, then returns 'ok'."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls: list[int] = []

    def __call__(self, attempt: int) -> str:
        self.calls.append(attempt)
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def test_transient_errors_are_retried_with_backoff() -> None:
    sleeps: list[float] = []
    script = Script(TransientApiError("503"), TransientApiError("502"))
    result = call_with_retries(
        script, policy=RetryPolicy(jitter=0.0, base_delay=0.5), sleep=sleeps.append
    )
    assert result == "ok"
    assert script.calls == [1, 2, 3]
    assert sleeps == [0.5, 1.0]


def test_retry_after_hint_is_honoured() -> None:
    sleeps: list[float] = []
    script = Script(TransientApiError("429", retry_after=3.0))
    call_with_retries(script, policy=RetryPolicy(jitter=0.0), sleep=sleeps.append)
    assert sleeps == [3.0]


def test_final_errors_are_not_retried() -> None:
    sleeps: list[float] = []
    script = Script(AuthenticationError("401"))
    with pytest.raises(AuthenticationError):
        call_with_retries(script, policy=RetryPolicy(), sleep=sleeps.append)
    assert script.calls == [1]
    assert sleeps == []


def test_exhaustion_keeps_context_and_says_what_to_do() -> None:
    sleeps: list[float] = []
    errors = [TransientApiError("The API answered HTTP 503.", http_status=503, page=4)] * 3
    script = Script(*errors)
    with pytest.raises(RetriesExhaustedError) as caught:
        call_with_retries(script, policy=RetryPolicy(attempts=3, jitter=0.0), sleep=sleeps.append)
    assert str(caught.value) == (
        "The API answered HTTP 503. Tried 3 times; the API or the network is not answering "
        "well: try again later, or raise --max-retries."
    )
    assert (caught.value.http_status, caught.value.page, caught.value.attempt) == (503, 4, 3)
    assert len(sleeps) == 2


def test_on_retry_sees_each_retry() -> None:
    seen: list[tuple[str, float]] = []
    script = Script(TransientApiError("a"), TransientApiError("b"))
    call_with_retries(
        script,
        policy=RetryPolicy(jitter=0.0),
        sleep=lambda _: None,
        on_retry=lambda error, delay: seen.append((error.message, delay)),
    )
    assert seen == [("a", 0.5), ("b", 1.0)]


def test_a_code_is_retried_at_most_as_often_as_its_limit_says() -> None:
    sleeps: list[float] = []
    errors = [TransientApiError("Not JSON.", code="invalid_json")] * 3
    script = Script(*errors)
    with pytest.raises(RetriesExhaustedError) as caught:
        call_with_retries(script, policy=RetryPolicy(jitter=0.0), sleep=sleeps.append)
    assert script.calls == [1, 2]
    assert sleeps == [0.5]
    assert str(caught.value) == (
        "Not JSON. Tried 2 times; an answer like this one is asked for again once only: "
        "try again later."
    )
    assert caught.value.attempt == 2


def test_a_limited_code_does_not_use_up_the_others_retries() -> None:
    script = Script(
        TransientApiError("503"),
        TransientApiError("Not JSON.", code="invalid_json"),
        TransientApiError("503"),
    )
    assert call_with_retries(script, policy=RetryPolicy(), sleep=lambda _: None) == "ok"
    assert script.calls == [1, 2, 3, 4]


# --- the error body's `retryable` flag (issue 20), against a server that answers from a script --


def _client(base_url: str, sleeps: list[float]) -> ApiClient:
    policy = RetryPolicy(attempts=4, base_delay=0.5, jitter=0.0)
    return ApiClient(base_url=base_url, api_key=CANARY_KEY, retry=policy, sleep=sleeps.append)


def _error(status: int, retryable: object) -> Answer:
    body: dict[str, object] = {"code": "X", "message": "said", "correlation_id": "c-1"}
    if retryable != "absent":
        body["retryable"] = retryable
    return Answer(status=status, body=body)


@pytest.mark.parametrize(
    ("status", "retryable", "requests", "error"),
    [
        # "retryable": false is final, whatever the status
        *[(status, False, 1, RequestRejectedError) for status in (429, 500, 502, 503, 504)],
        (400, False, 1, RequestRejectedError),
        (404, False, 1, JobNotFoundError),
        # "retryable": true is retried, but for a rejected key or an unpaid balance
        *[(status, True, 2, None) for status in (400, 404, 409, 422, 429, 503)],
        (401, True, 1, AuthenticationError),
        (402, True, 1, InsufficientBalanceError),
        (403, True, 1, AuthenticationError),
        # no flag, or one that is no JSON boolean: the status decides, as before
        (503, "absent", 2, None),
        (429, "absent", 2, None),
        (404, "absent", 1, JobNotFoundError),
        (409, "absent", 1, RequestRejectedError),
        (503, "false", 2, None),
        (409, 1, 1, RequestRejectedError),
        (503, None, 2, None),
    ],
)
def test_the_error_body_says_whether_to_retry(
    status: int, retryable: object, requests: int, error: type[ApiError] | None
) -> None:
    sleeps: list[float] = []
    answers = [_error(status, retryable), Answer(body=job_body("j1", [item(0)]))]
    with scripted_server(answers) as server:
        client = _client(server.base_url, sleeps)
        if error is None:
            page = client.fetch_page("j1", page=1, page_size=50)
            assert page.input_indexes() == [0]
        else:
            with pytest.raises(error) as caught:
                client.fetch_page("j1", page=1, page_size=50)
            assert caught.value.http_status == status
            assert "correlation id c-1" in str(caught.value)
        assert len(server.seen) == requests
    assert len(sleeps) == requests - 1


def test_a_passing_status_that_will_not_pass_says_so() -> None:
    with scripted_server([_error(503, False)]) as server:
        with pytest.raises(RequestRejectedError) as caught:
            _client(server.base_url, []).fetch_page("j1", page=1, page_size=50)
    assert str(caught.value) == (
        "The API refused the request (HTTP 503: said; correlation id c-1), and says that "
        "retrying will not help."
    )
    assert caught.value.exit_code == 7


@pytest.mark.parametrize(
    ("status", "retryable", "expected"),
    [(503, None, True), (503, False, False), (200, True, True), (402, True, False)],
)
def test_is_retried(status: int, retryable: bool | None, expected: bool) -> None:
    assert is_retried(status, retryable) is expected


# --- a whole answer that is not JSON: once more only ------------------------------------------


def test_a_whole_answer_that_is_not_json_is_asked_for_once_more_only() -> None:
    cut = Answer(body=b'{"job_id": "j1", "results": [{"input_')  # its length matched
    sleeps: list[float] = []
    with scripted_server([cut, cut, Answer(body=job_body("j1", [item(0)]))]) as server:
        client = _client(server.base_url, sleeps)
        with pytest.raises(RetriesExhaustedError) as caught:
            client.fetch_page("j1", page=1, page_size=50)
        assert len(server.seen) == 2
    assert sleeps == [0.5]
    assert str(caught.value) == (
        "The API answered HTTP 200 with a body that is not valid JSON (37 bytes, perhaps cut "
        "short). Tried 2 times; an answer like this one is asked for again once only: try again "
        "later."
    )
    assert client.stats.to_dict()["retries_by_reason"] == {"invalid_json": 1}


def test_a_whole_answer_that_is_not_json_once_is_mended_by_one_retry() -> None:
    cut = Answer(body=b'{"job_id": "j1", "results": [{"input_')
    with scripted_server([cut, Answer(body=job_body("j1", [item(0)]))]) as server:
        page = _client(server.base_url, []).fetch_page("j1", page=1, page_size=50)
    assert page.input_indexes() == [0]


def test_nan_in_an_answer_is_null_at_once_with_no_retry() -> None:
    body = job_body("j1", [item(0)], batch_config={"ratio": "NAN"})
    content = __import__("json").dumps(body).replace('"NAN"', "NaN").encode()
    sleeps: list[float] = []
    with scripted_server([Answer(body=content)]) as server:
        page = _client(server.base_url, sleeps).fetch_page("j1", page=1, page_size=50)
        assert len(server.seen) == 1
    assert sleeps == []
    assert page.job.batch_config == {"ratio": None}
    assert page.job.values_changed == 1
