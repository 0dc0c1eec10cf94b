from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from batch_export.errors import (
    AuthenticationError,
    RetriesExhaustedError,
    TransientApiError,
)
from batch_export.fetch.retry import RetryPolicy, call_with_retries, parse_retry_after

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
