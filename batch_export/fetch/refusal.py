"""What an answer other than 200 says, as one error of the tree, whatever its body holds.

The API's error bodies are ``{"code", "message", "retryable", "correlation_id", "details"}``
objects (the SDK's ``ErrorResponse``), or FastAPI's ``{"detail": [{"loc", "msg", "type"}]}``
for a 422; gateways in front of it send HTML pages. Whether an answer is asked for again
follows its ``retryable`` flag where it has one (:func:`batch_export.fetch.retry.is_retried`),
else its status.
Each is read on a bounded prefix (:data:`batch_export.fetch.transport.ERROR_BODY_PREFIX`), in time
linear in its length, and shown as a short excerpt with control characters escaped, so a
hostile page can neither stall the export nor write to the terminal.

Example:

    >>> error = refusal(404, b'{"message": "Batch job not found"}', "http://h/v1/batch/j1")
    >>> type(error).__name__, error.http_status
    ('JobNotFoundError', 404)
    >>> type(refusal(503, b'{"message": "gone for good", "retryable": false}', "u")).__name__
    'RequestRejectedError'
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from batch_export.api import API_KEY_ENV
from batch_export.errors import (
    ApiError,
    AuthenticationError,
    InsufficientBalanceError,
    JobNotFoundError,
    RequestRejectedError,
    TransientApiError,
)
from batch_export.fetch.retry import RETRY_STATUS, is_retried, parse_retry_after
from batch_export.text import printable

__all__ = ["excerpt", "refusal"]

_EXCERPT = 200
_DETAILS_SHOWN = 5
_SKIPPED_ELEMENTS = ("script", "style")


def refusal(
    status: int,
    content: bytes,
    url: str,
    *,
    retry_after: str | None = None,
    redact: Callable[[str], str] = str,
) -> ApiError:
    """The error for an answer of HTTP ``status`` with body ``content`` (a prefix is enough).

    ``redact`` is applied to whatever the server wrote before it is cut or shown. An answer
    that may pass is a :class:`TransientApiError`, which the client asks for again.
    """
    body = _error_fields(content, redact)
    said = f"HTTP {status}: {body.message}" + (
        f"; correlation id {body.correlation_id}" if body.correlation_id else ""
    )
    context: dict[str, Any] = {
        "code": body.code,
        "correlation_id": body.correlation_id,
        "http_status": status,
        "url": url,
    }
    if is_retried(status, body.retryable):
        hint = parse_retry_after(retry_after)
        return TransientApiError(f"The API answered {said}.", retry_after=hint, **context)
    if status in RETRY_STATUS:  # a passing status, which the API says will not pass
        return RequestRejectedError(
            f"The API refused the request ({said}), and says that retrying will not help.",
            **context,
        )
    if status in (401, 403):
        return AuthenticationError(
            f"The API rejected the API key ({said}): check --api-key or {API_KEY_ENV}.", **context
        )
    if status == 404:
        return JobNotFoundError(
            f"The API has no such job ({said}): check the job id and the base URL; "
            "the provider may no longer keep old jobs.",
            **context,
        )
    if status == 402:
        return InsufficientBalanceError(
            f"The API refused the request for want of balance ({said}): top up the account, "
            "then rerun.",
            **context,
        )
    return RequestRejectedError(f"The API refused the request ({said}).", **context)


class _Said(NamedTuple):
    """What an error body says, as far as it says it."""

    code: str | None
    message: str
    correlation_id: str | None = None
    retryable: bool | None = None  # None: no flag, or one that is not a JSON boolean


def _error_fields(content: bytes, redact: Callable[[str], str]) -> _Said:
    """The API's own ``code``, ``message``, ``correlation_id`` and ``retryable``, or an excerpt
    of the body."""
    try:
        body = json.loads(content.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list):
            problems = [_problem(entry, redact) for entry in detail[:_DETAILS_SHOWN]]
            more = len(detail) - _DETAILS_SHOWN
            text = "; ".join(p for p in problems if p) + (f"; and {more} more" if more > 0 else "")
            return _Said("validation_error", excerpt(text) or "validation error")
        if "message" in body or "code" in body:
            said = _scalar(body.get("message")) or _scalar(body.get("code")) or "(no message)"
            return _Said(
                _short(body.get("code"), redact),
                excerpt(redact(said)),
                _short(body.get("correlation_id"), redact),
                _flag(body),
            )
    flag = _flag(body) if isinstance(body, dict) else None
    return _Said(None, excerpt(redact(_body_text(content))) or "(empty body)", None, flag)


def _flag(body: dict[str, Any]) -> bool | None:
    """The body's ``retryable``: True or False, or None when absent or not a JSON boolean."""
    value = body.get("retryable")
    return value if isinstance(value, bool) else None


def _problem(entry: object, redact: Callable[[str], str]) -> str:
    """One entry of a 422's ``detail``: ``loc: msg``, whatever shapes the two have."""
    if not isinstance(entry, dict):
        return redact(_scalar(entry) or "")
    loc = entry.get("loc")
    parts = loc[:10] if isinstance(loc, list) else [loc]
    where = ".".join(text for text in map(_scalar, parts) if text)
    msg = _scalar(entry.get("msg")) or "invalid"
    return redact(f"{where}: {msg}" if where else msg)


def _scalar(value: object) -> str | None:
    """A JSON scalar as text (cut), or None for null and for arrays and objects."""
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)[: _EXCERPT * 2]


def _short(value: object, redact: Callable[[str], str]) -> str | None:
    text = _scalar(value)
    return None if text is None else printable(redact(text))[:_EXCERPT]


def _body_text(content: bytes) -> str:
    """The text of an HTML (or any) body: tags, scripts and styles left out, in linear time."""
    text = content.decode("utf-8", errors="replace")
    lower = text.lower()
    pieces: list[str] = []
    position = 0
    while True:
        opening = text.find("<", position)
        if opening < 0:
            pieces.append(text[position:])
            break
        pieces.append(text[position:opening])
        closing = text.find(">", opening)
        if closing < 0:
            break
        position = closing + 1
        name = lower[opening + 1 : closing].split(None, 1)[0] if closing > opening + 1 else ""
        if name in _SKIPPED_ELEMENTS:
            end = lower.find(f"</{name}", position)
            if end < 0:
                break
            position = end
        pieces.append(" ")
    return "".join(pieces)


def excerpt(text: str) -> str:
    """``text`` on one line, control characters escaped, cut to a short excerpt."""
    flat = printable(" ".join(text[: _EXCERPT * 50].split()))
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 3] + "..."
