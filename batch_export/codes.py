"""The item failure codes the provider names: what each means, and whether resubmitting may help.

One table, :data:`FAILURE_CODES`, read by the summary (text and JSON), the HTML report, the
``--failed-urls-retryable`` file and the sync. The codes are the provider's SDK's
``ExtractionErrorCode`` (``geonode-scraper-sdk`` :data:`SDK_VERSION`, which the contract tests
hold this table to). The meanings and the verdicts are ours, read from the codes' names and
the API's documentation: the provider flags ``retryable`` on error answers, not on a batch's
items. ``resubmit`` is True where sending the URL again, in a new batch, may succeed (the
failure was passing, or on the account's side, such as a balance to top up), False where the
URL or the target is the problem. Items type ``error_code`` as a plain string: a code not in
the table is kept as it came, and its verdict is unknown (None).

Example:

    >>> describe("RATE_LIMITED").meaning
    'the target or the API limited the request rate'
    >>> may_resubmit("PERMANENT_BLOCK"), may_resubmit("RATE_LIMITED"), may_resubmit("teapot")
    (False, True, None)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FAILURE_CODES", "SDK_VERSION", "FailureCode", "describe", "may_resubmit", "verdict"]

# The version of the provider's SDK whose models the emulator and the client are tested
# against (the dev extra pins it), and whose ExtractionErrorCode this table follows.
SDK_VERSION = "0.6.1"


@dataclass(frozen=True)
class FailureCode:
    """One known failure code: a short meaning, and whether resubmitting the URL may help."""

    code: str
    meaning: str
    resubmit: bool


_TABLE = (
    FailureCode("RATE_LIMITED", "the target or the API limited the request rate", True),
    FailureCode("WORK_CONCURRENCY_LIMITED", "the plan's work slots were all in use", True),
    FailureCode(
        "WORK_CONCURRENCY_LEASE_EXPIRED", "the item's work slot expired before it finished", True
    ),
    FailureCode("TEMPORARY_BLOCK", "the target blocked the request for a while", True),
    FailureCode("NETWORK_ERROR", "the target could not be reached (DNS, connection)", True),
    FailureCode("CAPTCHA_CHALLENGE", "the target answered with a CAPTCHA", False),
    FailureCode("PERMANENT_BLOCK", "the target refuses the scraper", False),
    FailureCode("INVALID_URL", "the URL cannot be fetched as written", False),
    FailureCode("INVALID_WAIT_FOR_SELECTOR", "the batch's wait_for is not a valid selector", False),
    FailureCode("WAIT_FOR_SELECTOR_TIMEOUT", "the wait_for selector did not appear in time", True),
    FailureCode("UNPROCESSABLE_CONTENT", "the page has no content that can be extracted", False),
    FailureCode("AUTH_REQUIRED", "the page needs a login", False),
    FailureCode("TIMEOUT", "the target did not answer in time", True),
    FailureCode("CANCELLED", "the item was cancelled before it ran", True),
    FailureCode("PAYMENT_REQUIRED", "the account's balance ran out: top it up first", True),
    FailureCode("INTERNAL_ERROR", "the scraper failed on the provider's side", True),
    FailureCode("PROXY_ERROR", "the proxy could not reach the target", True),
)

FAILURE_CODES: dict[str, FailureCode] = {entry.code: entry for entry in _TABLE}


def describe(code: str | None) -> FailureCode | None:
    """The table's entry for ``code``; None for a code the provider does not name.

    >>> describe("TIMEOUT").resubmit, describe("target_timeout")
    (True, None)
    """
    return FAILURE_CODES.get(code) if code is not None else None


def may_resubmit(code: str | None) -> bool | None:
    """Whether resubmitting a URL that failed with ``code`` may help; None when unknown."""
    entry = describe(code)
    return entry.resubmit if entry is not None else None


def verdict(code: str | None) -> str:
    """One word for people: ``resubmit``, ``final``, or ``unknown`` for an unnamed code.

    >>> [verdict(code) for code in ("NETWORK_ERROR", "AUTH_REQUIRED", "x")]
    ['resubmit', 'final', 'unknown']
    """
    resubmit = may_resubmit(code)
    if resubmit is None:
        return "unknown"
    return "resubmit" if resubmit else "final"
