"""Retry policy as named data, and the one place that runs it.

What is retried follows the API's documentation and the gateways in front of it: 429 and
5xx answers, dropped connections, read timeouts and bodies that are cut short or are not
JSON. Everything else (400, 401, 402, 403, 404, 409, 422, ...) is final. An error body's own
``retryable`` flag (the SDK's ``ErrorResponse``) decides over the status where there is one:
``false`` is final whatever the status, ``true`` is retried except 401, 402 and 403, which no
retry mends (:func:`is_retried`).

Some failures get fewer retries than the policy's attempts allow (:data:`RETRY_LIMITS`): a
whole answer, its length matched, that is not JSON will seldom be JSON on the next try, so it
is asked for once more only.

The loop itself is tenacity's; this module supplies the policy (attempts, exponential backoff
with jitter, a cap) and how a server's ``Retry-After`` hint is honoured: seconds or an HTTP
date, a value of 0 or less taken as no hint, and a cap so a hostile header cannot stall an
export for hours.

Example:

    >>> from batch_export.fetch.retry import RetryPolicy, parse_retry_after
    >>> policy = RetryPolicy(attempts=3, base_delay=0.5, jitter=0.0)
    >>> policy.backoff(1), policy.backoff(2)
    (0.5, 1.0)
    >>> parse_retry_after("7")
    7.0
    >>> is_retried(503, None), is_retried(503, False), is_retried(404, True), is_retried(401, True)
    (True, False, True, False)
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TypeVar

from batch_export.api import DEFAULT_MAX_RETRIES
from batch_export.errors import RetriesExhaustedError, TransientApiError

if TYPE_CHECKING:
    import tenacity

__all__ = [
    "FINAL_STATUS",
    "NEVER_RETRIED",
    "RETRY_LIMITS",
    "RETRY_STATUS",
    "RetryPolicy",
    "call_with_retries",
    "is_retried",
    "parse_retry_after",
]

RETRY_STATUS: frozenset[int] = frozenset({429, 500, 502, 503, 504})
FINAL_STATUS: frozenset[int] = frozenset({400, 401, 402, 403, 404, 409, 422})
# A rejected key, a balance to top up: final even where the body says `"retryable": true`.
NEVER_RETRIED: frozenset[int] = frozenset({401, 402, 403})
# The most retries of a failure by its code (TransientApiError.code), whatever the attempts.
RETRY_LIMITS: tuple[tuple[str, int], ...] = (("invalid_json", 1),)

T = TypeVar("T")
_MAX_HEADER = 200


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried.

    ``attempts`` counts every try, the first included. The n-th retry waits
    ``min(max_delay, base_delay * 2 ** (n - 1))``, spread by up to ``jitter`` of itself, unless
    the server sent a usable ``Retry-After``, which is honoured up to ``retry_after_cap``.
    ``limits`` caps the retries of a failure by its code (:data:`RETRY_LIMITS`).
    """

    attempts: int = DEFAULT_MAX_RETRIES + 1
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.5
    retry_after_cap: float = 30.0
    limits: tuple[tuple[str, int], ...] = RETRY_LIMITS

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if min(self.base_delay, self.max_delay, self.jitter, self.retry_after_cap) < 0:
            raise ValueError("delays, jitter and caps cannot be negative")

    def backoff(self, retry_number: int, *, rng: random.Random | None = None) -> float:
        """The wait before retry number ``retry_number`` (1-based), when no hint came."""
        delay: float = min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1))
        if self.jitter and rng is not None:
            delay *= 1 + self.jitter * (2 * rng.random() - 1)
        return max(0.0, min(self.max_delay, delay))

    def delay(
        self, retry_number: int, retry_after: float | None, *, rng: random.Random | None = None
    ) -> float:
        """The wait before a retry: the server's hint if usable, else backoff."""
        if retry_after is not None and retry_after > 0:
            return min(retry_after, self.retry_after_cap)
        return self.backoff(retry_number, rng=rng)


def is_retried(status: int, retryable: bool | None) -> bool:
    """Whether an answer of HTTP ``status`` is asked for again, its body saying ``retryable``.

    ``retryable`` is the error body's flag, None where it has none (or not a JSON boolean):
    then the status decides (:data:`RETRY_STATUS`).
    """
    if retryable is None:
        return status in RETRY_STATUS
    return retryable and status not in NEVER_RETRIED


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or None when there is no usable hint.

    Accepts delta-seconds and HTTP dates; anything unparseable, non-finite, longer than a
    header value should be, zero or in the past is None. A finite hint of any size is capped
    later, by :meth:`RetryPolicy.delay`.
    """
    if value is None or len(value) > _MAX_HEADER:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            from email.utils import parsedate_to_datetime  # seldom needed: loads slowly

            when = parsedate_to_datetime(text)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            seconds = (when - (now or datetime.now(UTC))).total_seconds()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if not math.isfinite(seconds) or seconds <= 0:  # NaN, infinite, or no wait asked
        return None
    return seconds


def call_with_retries(
    attempt: Callable[[int], T],
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[TransientApiError, float], None] | None = None,
) -> T:
    """Run ``attempt(attempt_number)`` until it succeeds, fails for good, or the policy gives up.

    Only :class:`TransientApiError` is retried, each code at most as often as
    ``policy.limits`` says. When the last attempt fails too, the error is raised again as
    :class:`RetriesExhaustedError`, keeping its context.

    The first attempt runs alone: the loop is set up only when it fails (a 100,000-item export
    makes 2,000 requests, and setting up tenacity's loop for each cost more than the request's
    own Python).
    """
    try:
        return attempt(1)
    except TransientApiError as error:
        first = error
    return _retried(attempt, first, policy=policy, sleep=sleep, rng=rng, on_retry=on_retry)


def _retried(
    attempt: Callable[[int], T],
    first: TransientApiError,
    *,
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    rng: random.Random | None,
    on_retry: Callable[[TransientApiError, float], None] | None,
) -> T:
    """:func:`call_with_retries` after a first attempt failed with ``first``: the loop takes
    that failure as its first attempt's, then runs the others."""
    import tenacity  # loaded on a first failure only (12 ms of an export's start-up)

    jitter_rng = rng or random.Random()
    limits: dict[str | None, int] = dict(policy.limits)
    retried: Counter[str | None] = Counter()

    def retry(state: tenacity.RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if not isinstance(error, TransientApiError):
            return False
        return error.code not in limits or retried[error.code] < limits[error.code]

    def wait(state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        hint = error.retry_after if isinstance(error, TransientApiError) else None
        return policy.delay(state.attempt_number, hint, rng=jitter_rng)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TransientApiError):
            retried[error.code] += 1
            if on_retry is not None:
                on_retry(error, state.upcoming_sleep)

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry,
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    tried = 0
    try:
        for try_state in retrying:
            with try_state:
                tried = try_state.retry_state.attempt_number
                if tried == 1:
                    raise first
                return attempt(tried)
    except RetriesExhaustedError:
        raise
    except TransientApiError as last:
        limit = limits.get(last.code) if tried < policy.attempts else None
        raise _exhausted(last, tried, limit=limit) from last
    raise AssertionError("unreachable: tenacity ends with a result or an error")


def _exhausted(
    last: TransientApiError, attempts: int, *, limit: int | None
) -> RetriesExhaustedError:
    advice = (
        "the API or the network is not answering well: try again later, or raise --max-retries."
        if limit is None
        else f"an answer like this one is asked for again {_times(limit)} only: try again later."
    )
    return RetriesExhaustedError(
        f"{last.message} Tried {_times(attempts)}; {advice}",
        code=last.code,
        correlation_id=last.correlation_id,
        job_id=last.job_id,
        page=last.page,
        url=last.url,
        attempt=attempts,
        http_status=last.http_status,
    )


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"
