"""The query parameters of the emulated endpoints, checked the way the API checks them.

Private to :mod:`batch_export.testing._app`. Each reader returns the parsed values, or the
list of validation errors that the API (FastAPI over pydantic) puts in a 422's ``detail``:
``{"type", "loc": ["query", name], "msg", "input", "ctx"?}``, one per bad parameter.

What the provider's SDK (``api/batch_api.py``) states, and the emulator follows:

- ``GET /v1/batch/{job_id}``: ``page`` >= 1, ``page_size`` 1 to 50.
- ``GET /v1/batch/jobs``: ``page`` >= 1, ``page_size`` 1 to 100; ``status`` one job status;
  ``start_date`` / ``end_date`` date-times keeping jobs created on or after / on or before
  them. A date-time is ISO 8601 (``2026-05-26``, ``2026-05-26T10:30:00Z``, the SDK's own
  ``2026-05-26T10:30:00.000000+0000``) or Unix seconds; one without an offset is UTC.

Example:

    >>> listing_query({"status": "completed", "start_date": "2026-05-26"}).status
    'completed'
    >>> [error["type"] for error in listing_query({"page_size": "101", "status": "done"})]
    ['enum', 'less_than_equal']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_export.api import MAX_LIST_PAGE_SIZE, MAX_PAGE_SIZE

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "JOB_STATUSES",
    "ListingQuery",
    "listing_query",
    "parse_datetime",
    "status_query",
]

DEFAULT_PAGE_SIZE = 10
JOB_STATUSES: tuple[str, ...] = ("queued", "processing", "completed", "failed", "cancelled")

QueryError = dict[str, Any]

_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
# pydantic's date-time grammar: a date, optionally a time (seconds and fraction optional),
# optionally an offset; or a number of seconds since the epoch.
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?)?"
)
_UNIX = re.compile(r"[+-]?\d+(?:\.\d+)?")
# pydantic reads a number past this as milliseconds rather than seconds.
_UNIX_MS_FROM = 2e10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _error(name: str, kind: str, msg: str, raw: str, ctx: dict[str, Any] | None) -> QueryError:
    error: QueryError = {"type": kind, "loc": ["query", name], "msg": msg, "input": raw}
    if ctx is not None:
        error["ctx"] = ctx
    return error


def _integer(query: dict[str, str], name: str, default: int, high: int | None) -> Any:
    """The parameter's value, or its validation error (a dict)."""
    raw = query.get(name)
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        msg = "Input should be a valid integer, unable to parse string as an integer"
        return _error(name, "int_parsing", msg, raw, None)
    value = int(raw)
    if value < 1:
        msg = "Input should be greater than or equal to 1"
        return _error(name, "greater_than_equal", msg, raw, {"ge": 1})
    if high is not None and value > high:
        msg = f"Input should be less than or equal to {high}"
        return _error(name, "less_than_equal", msg, raw, {"le": high})
    return value


def parse_datetime(raw: str) -> datetime | None:
    """An aware UTC datetime from the API's date-time grammar, or None when it is not one.

    >>> parse_datetime("2026-05-26T10:30:00.5-02:00")
    datetime.datetime(2026, 5, 26, 12, 30, 0, 500000, tzinfo=datetime.timezone.utc)
    >>> parse_datetime("2026-05-26"), parse_datetime("yesterday")
    (datetime.datetime(2026, 5, 26, 0, 0, tzinfo=datetime.timezone.utc), None)
    """
    if _UNIX.fullmatch(raw):
        number = float(raw)
        seconds = number / 1000 if abs(number) > _UNIX_MS_FROM else number
        try:
            return _EPOCH + timedelta(seconds=seconds)
        except OverflowError:
            return None
    match = _DATETIME.fullmatch(raw)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0").ljust(6, "0")),
            tzinfo=UTC,
        )
        if sign is not None and not zulu:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            moment -= offset if sign == "+" else -offset
    except (ValueError, OverflowError):
        return None
    return moment


def _date_param(query: dict[str, str], name: str) -> Any:
    raw = query.get(name)
    if raw is None:
        return None
    moment = parse_datetime(raw)
    if moment is None:
        reason = "input is too short" if len(raw) < 10 else "invalid date-time format"
        msg = f"Input should be a valid datetime or date, {reason}"
        return _error(name, "datetime_from_date_parsing", msg, raw, {"error": reason})
    return moment


def _status_param(query: dict[str, str]) -> Any:
    raw = query.get("status")
    if raw is None or raw in JOB_STATUSES:
        return raw
    expected = ", ".join(f"'{status}'" for status in JOB_STATUSES[:-1])
    expected += f" or '{JOB_STATUSES[-1]}'"
    return _error("status", "enum", f"Input should be {expected}", raw, {"expected": expected})


def status_query(query: dict[str, str]) -> tuple[int, int] | list[QueryError]:
    """``(page, page_size)`` of a status request, or the validation errors."""
    page = _integer(query, "page", 1, None)
    size = _integer(query, "page_size", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    errors = [value for value in (page, size) if isinstance(value, dict)]
    return errors or (page, size)


@dataclass(frozen=True)
class ListingQuery:
    """The parameters of one listing request: a page, and which jobs it keeps."""

    page: int
    page_size: int
    status: str | None = None
    start: datetime | None = None
    end: datetime | None = None

    @property
    def filtered(self) -> bool:
        """True when some filter is given."""
        return (self.status, self.start, self.end) != (None, None, None)

    def keeps(self, status: object, created: datetime | None) -> bool:
        """Whether a job of ``status`` created at ``created`` (None: unknown) is listed."""
        if self.status is not None and status != self.status:
            return False
        if self.start is None and self.end is None:
            return True
        if created is None:
            return False
        return (self.start is None or created >= self.start) and (
            self.end is None or created <= self.end
        )


def listing_query(query: dict[str, str]) -> ListingQuery | list[QueryError]:
    """The listing's parameters, or the validation errors (in the SDK's parameter order)."""
    values = {
        "status": _status_param(query),
        "start": _date_param(query, "start_date"),
        "end": _date_param(query, "end_date"),
        "page": _integer(query, "page", 1, None),
        "page_size": _integer(query, "page_size", DEFAULT_PAGE_SIZE, MAX_LIST_PAGE_SIZE),
    }
    # FastAPI reports bad parameters in their declared order, the SDK's: page and size last.
    errors = [value for value in values.values() if isinstance(value, dict)]
    return errors or ListingQuery(**values)
