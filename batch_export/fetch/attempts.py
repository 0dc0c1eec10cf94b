"""A request's attempts: the first in flight at once, the others only after a failure.

:class:`Attempts` runs a request that :class:`~batch_export.fetch.client.ApiClient` has made
(its URL and :class:`~batch_export.fetch.exchange.Outgoing`) over the client's
:class:`~batch_export.fetch.exchange.Exchange`. The first attempt is handed to libcurl before
:meth:`Attempts.start` returns; :meth:`~batch_export.fetch.exchange.Pending.result` waits for
it, and only a failure that may pass brings the others, under the retry policy
(:func:`batch_export.fetch.retry.call_with_retries`). Every attempt is counted
(:class:`RequestStats`); every error leaves with its context (job, page, attempt number) and
without the key, or a long piece of it, in its text, the errors handed to ``on_retry``
included.

Example (a port where nothing listens, one attempt):

    >>> from batch_export.fetch.exchange import Exchange, Outgoing
    >>> from batch_export.fetch.retry import RetryPolicy
    >>> from batch_export.fetch.throttle import AdaptiveLimit
    >>> exchange = Exchange(
    ...     base_url="http://127.0.0.1:9", api_key="k", timeout=5, max_response_bytes=100,
    ...     gate=AdaptiveLimit(1),
    ... )
    >>> attempts = Attempts(exchange, api_key="k", policy=RetryPolicy(attempts=1))
    >>> pending = attempts.start("http://127.0.0.1:9/v1/batch/j1", Outgoing("GET", {}, None, 200),
    ...                          bytes, job_id="j1")
    >>> try:
    ...     pending.result()
    ... except Exception as error:
    ...     print(error.job_id, error.attempt, attempts.stats.to_dict()["requests"])
    j1 1 1
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from batch_export.errors import ApiError, BatchExportError, TransientApiError
from batch_export.fetch.exchange import Exchange, Outgoing, Pending
from batch_export.fetch.retry import RetryPolicy, call_with_retries
from batch_export.fetch.secret import scrub

__all__ = ["Attempts", "RequestStats"]

T = TypeVar("T")


class RequestStats:
    """Thread-safe counts of what the client did: requests, and retries by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries: Counter[str] = Counter()

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def count_retry(self, reason: str) -> None:
        with self._lock:
            self.retries[reason] += 1

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": sum(self.retries.values()),
                "retries_by_reason": dict(sorted(self.retries.items())),
            }


class Attempts:
    """The attempts of one client's requests: its exchange, retry policy and counts.

    ``sleep`` waits between attempts (injected, so that retry tests take no time);
    ``on_retry(error, delay)`` is told of each retry before its wait.
    """

    def __init__(
        self,
        exchange: Exchange,
        *,
        api_key: str | None,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[TransientApiError, float], None] | None = None,
    ) -> None:
        self.stats = RequestStats()
        self._exchange = exchange
        self._api_key = api_key
        self._policy = policy
        self._sleep = sleep
        self._on_retry = on_retry
        self._rng = random.Random()

    def start(
        self,
        url: str,
        outgoing: Outgoing,
        decode: Callable[[bytes, str], T],
        *,
        retry: bool = True,
        job_id: str | None = None,
        page: int | None = None,
    ) -> Pending[T]:
        """The request to ``url`` under way: its first attempt is handed to libcurl now.

        ``retry=False`` makes one attempt only; ``job_id`` and ``page`` are its errors'
        context.
        """
        target = outgoing.target(url)
        first = [self._exchange.submit(target, outgoing)]

        def attempt(number: int) -> T:
            self.stats.count_request()
            transfer = first.pop() if first else self._exchange.submit(target, outgoing)
            try:
                return self._exchange.answer(url, outgoing, transfer, decode)
            except BatchExportError as error:
                scrub(error, self._api_key)  # before on_retry sees it
                if isinstance(error, ApiError):
                    error.job_id, error.page, error.attempt = job_id, page, number
                raise

        def run() -> T:
            try:
                if not retry:
                    return attempt(1)
                return call_with_retries(
                    attempt,
                    policy=self._policy,
                    sleep=self._sleep,
                    rng=self._rng,
                    on_retry=self._retrying,
                )
            except BatchExportError as error:
                scrub(error, self._api_key)
                raise

        return Pending(run, first)

    def _retrying(self, error: TransientApiError, delay: float) -> None:
        reason = str(error.http_status) if error.http_status else (error.code or "network")
        self.stats.count_retry(reason)
        if self._on_retry is not None:
            self._on_retry(error, delay)
