"""What an answer other than 200 says, as one error of the tree, whatever its body holds.

The API's error bodies are ``{"code", "message", "correlation_id"}`` objects, or FastAPI's
``{"detail": [{"loc", "msg", "type"}]}`` for a 422; gateways in front of it send HTML pages.
Each is read on a bounded prefix (:data:`batch_export.fetch.transport.ERROR_BODY_PREFIX`), in time
linear in its length, and shown as a short excerpt with control characters escaped, so a
hostile page can neither stall the export nor write to the terminal.

Example:

    >>> error = refusal(404, b'{"message": "Batch job not found"}', "http://h/v1/batch/j1")
    >>> type(error).__name__, error.http_status
    ('JobNotFoundError', 404)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from batch_export.api import API_KEY_ENV
from batch_export.errors import (
    ApiError,
    AuthenticationError,
    InsufficientBalanceError,
    JobNotFoundError,
    RequestRejectedError,
    TransientApiError,
)
from batch_export.fetch.retry import RETRY_STATUS, parse_retry_after
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

    ``redact`` is applied to whatever the server wrote before it is cut or shown.
    """
    code, message, correlation_id = _error_fields(content, redact)
    said = f"HTTP {status}: {message}" + (
        f"; correlation id {correlation_id}" if correlation_id else ""
    )
    context: dict[str, Any] = {
        "code": code,
        "correlation_id": correlation_id,
        "http_status": status,
        "url": url,
    }
    if status in RETRY_STATUS:
        hint = parse_retry_after(retry_after)
        return TransientApiError(f"The API answered {said}.", retry_after=hint, **context)
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


def _error_fields(
    content: bytes, redact: Callable[[str], str]
) -> tuple[str | None, str, str | None]:
    """The API's own ``code``, ``message`` and ``correlation_id``, or an excerpt of the body."""
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
            return "validation_error", excerpt(text) or "validation error", None
        if "message" in body or "code" in body:
            said = _scalar(body.get("message")) or _scalar(body.get("code")) or "(no message)"
            return (
                _short(body.get("code"), redact),
                excerpt(redact(said)),
                _short(body.get("correlation_id"), redact),
            )
    return None, excerpt(redact(_body_text(content))) or "(empty body)", None


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
