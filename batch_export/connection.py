"""How to reach the API and how to read a job: every connection option, declared once.

:class:`Connection` is the one declaration. Each field carries its default, its bounds and
its help text; the CLI's shared options (:func:`batch_export.cli.options.connection_options`)
are made from these fields, :class:`ConnectionOptions` (the ``**options`` of the notebook
functions) is checked against them by a test, and :meth:`Connection.client` builds the
:class:`~batch_export.fetch.client.ApiClient` they describe. Values are checked here, so that a
notebook user gets the same one-sentence refusal as the CLI (``page_size=0``,
``timeout=float("nan")``).

Example:

    >>> Connection(page_size=20).concurrency
    8
    >>> Connection(request_timeout=float("nan"))
    Traceback (most recent call last):
    ...
    batch_export.errors.InvalidInputError: --request-timeout must be a finite number greater \
than 0, got nan.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from batch_export.api import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_RETRIES,
    DEFAULT_REQUEST_TIMEOUT,
    DEFAULT_WAIT_TIMEOUT,
    MAX_PAGE_SIZE,
)
from batch_export.errors import InvalidInputError

if TYPE_CHECKING:
    from batch_export.fetch.client import ApiClient
    from batch_export.fetch.retry import RetryPolicy

__all__ = ["Connection", "ConnectionOptions", "option_name"]


def _option(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    envvar: str | None = None,
    flag: str | None = None,
    secret: bool = False,
) -> Any:
    """A field with its default and its CLI face: help text, bounds, environment variable,
    flag spelling; a ``secret`` is never in a repr."""
    face = {"help": help, "low": low, "high": high, "low_open": low_open}
    return field(default=default, repr=not secret, metadata=face | {"envvar": envvar, "flag": flag})


@dataclass(frozen=True, kw_only=True)
class Connection:
    """How to reach the API and how to read a job: what the CLI's shared options set."""

    base_url: str | None = _option(
        None, f"API base URL [default: {DEFAULT_BASE_URL}].", envvar=BASE_URL_ENV
    )
    api_key: str | None = _option(
        None,
        "API key, sent as X-Api-Key. Prefer the environment variable: a flag shows in `ps`.",
        envvar=API_KEY_ENV,
        secret=True,
    )
    page_size: int = _option(
        MAX_PAGE_SIZE,
        f"Items per page requested from the API (1 to {MAX_PAGE_SIZE}).",
        low=1,
        high=MAX_PAGE_SIZE,
    )
    concurrency: int = _option(
        DEFAULT_CONCURRENCY,
        "Requests in flight at once; lowered automatically while the API answers 429.",
        low=1,
        high=64,
    )
    max_retries: int = _option(
        DEFAULT_MAX_RETRIES,
        "Retries of a request that failed for a passing reason (429, 5xx, network).",
        low=0,
        high=50,
    )
    wait: bool = _option(
        True, "Wait for an unfinished job, or refuse it at once (exit 5).", flag="--wait/--no-wait"
    )
    timeout: float = _option(
        DEFAULT_WAIT_TIMEOUT,
        "Seconds to wait for the job to finish before giving up (exit 5).",
        low=0,
    )
    request_timeout: float = _option(
        DEFAULT_REQUEST_TIMEOUT,
        "Seconds one API request may take in all (connect, headers, body) before it is retried.",
        low=0,
        low_open=True,
    )
    max_response_mb: float = _option(
        DEFAULT_MAX_RESPONSE_BYTES / 2**20,
        "Largest API answer accepted, in MB, on the wire and after decompression.",
        low=0,
        low_open=True,
        high=4096,
    )
    allow_insecure_http: bool = _option(
        False, "Allow sending the API key over plain http to a host other than loopback."
    )
    # The delays of the retry policy; its number of attempts comes from max_retries.
    retry: RetryPolicy | None = None

    def __post_init__(self) -> None:
        for spec in dataclasses.fields(self):
            if "low" in spec.metadata:
                _check_bounds(spec, getattr(self, spec.name))

    def client(self, *, sleep: Callable[[float], None] = time.sleep) -> ApiClient:
        """A client configured by these options."""
        from batch_export.fetch.client import ApiClient
        from batch_export.fetch.retry import RetryPolicy

        retry = dataclasses.replace(self.retry or RetryPolicy(), attempts=self.max_retries + 1)
        return ApiClient(
            base_url=self.base_url,
            api_key=self.api_key,
            retry=retry,
            timeout=self.request_timeout,
            max_response_bytes=int(self.max_response_mb * 2**20),
            concurrency=self.concurrency,
            allow_insecure_http=self.allow_insecure_http,
            sleep=sleep,
        )


class ConnectionOptions(TypedDict, total=False):
    """The keyword options of :class:`Connection`, for functions that take them as ``**``.

    Kept equal to :class:`Connection`'s fields by ``tests/test_connection.py``.
    """

    base_url: str | None
    api_key: str | None
    page_size: int
    concurrency: int
    max_retries: int
    wait: bool
    timeout: float
    request_timeout: float
    max_response_mb: float
    allow_insecure_http: bool
    retry: RetryPolicy | None


def option_name(name: str) -> str:
    """The CLI flag of a :class:`Connection` field: ``page_size`` -> ``--page-size``."""
    return "--" + name.replace("_", "-")


def _check_bounds(spec: dataclasses.Field[Any], value: object) -> None:
    low, high = spec.metadata["low"], spec.metadata["high"]
    if low is None and high is None:
        return
    is_int = isinstance(spec.default, int) and not isinstance(spec.default, bool)
    number_ok = isinstance(value, int) if is_int else isinstance(value, int | float)
    ok = (
        number_ok
        and not isinstance(value, bool)
        and math.isfinite(float(value))  # type: ignore[arg-type]
        and (low is None or value > low or (value == low and not spec.metadata["low_open"]))
        and (high is None or value <= high)
    )
    if not ok:
        kind = "an integer" if is_int else "a finite number"
        above = "greater than" if spec.metadata["low_open"] else "at least"
        bound = f"{above} {low:g}" if high is None else f"between {low:g} and {high:g}"
        raise InvalidInputError(f"{option_name(spec.name)} must be {kind} {bound}, got {value!r}.")
