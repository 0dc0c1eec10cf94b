"""Every job of the account, from every page of ``GET /v1/batch/jobs``, and the time window.

The listing answers ``page_count`` with each page; a page that is empty or short ends it too,
in case the count is missing. Jobs created while the listing is read push older ones onto the
next page, so a job can come twice: it is kept once. A job that moves out of reach while the
listing is read is picked up by the next sync.

Example (against the bundled emulator):

    >>> from batch_export.fetch.client import ApiClient
    >>> from batch_export.testing import Emulator, generate_account
    >>> with Emulator(jobs=generate_account(jobs=12, processing=2), api_key="k") as emu:
    ...     jobs = list(iter_account_jobs(ApiClient(base_url=emu.base_url, api_key="k")))
    >>> len(jobs), sum(job.is_terminal for job in jobs)
    (12, 10)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from batch_export.errors import InvalidInputError
from batch_export.fetch.client import ApiClient, check_job_id
from batch_export.job import TERMINAL_STATUSES
from batch_export.sync.layout import fingerprint_token
from batch_export.text import shown

__all__ = [
    "FINGERPRINT_FIELDS",
    "LIST_PAGE_SIZE",
    "ListedJob",
    "TimeWindow",
    "iter_account_jobs",
    "parse_when",
]

LIST_PAGE_SIZE = 50

# The fields of a listed job that change when a finished job is changed (re-run, corrected,
# re-billed): a job whose fields differ from those recorded at its export is exported again.
FINGERPRINT_FIELDS: tuple[str, ...] = (
    "status",
    "accepted_urls",
    "completed_urls",
    "failed_urls",
    "cancelled_urls",
    "completed_at",
)

# Safety net against a listing whose `page_count` never stops growing.
_MAX_PAGES = 100_000
# A listed status, count or timestamp is short; anything longer is not one.
_MAX_FIELD_CHARS = 256


@dataclass(frozen=True, kw_only=True)
class ListedJob:
    """One entry of the account's job list.

    ``problem`` says why an entry cannot be exported (no usable ``job_id``, a listed field of
    the wrong type): such an entry fails alone, and the others go on. Without a usable id,
    ``job_id`` names the entry's place in the listing instead; a UUID is in its canonical
    form (:func:`~batch_export.fetch.client.check_job_id`), as the stores record it.
    ``hidden`` counts the runs of the API key hidden in the fields a store records (see
    :func:`iter_account_jobs`).
    """

    job_id: str
    status: str | None
    created_at: datetime | None
    fingerprint: dict[str, Any]
    problem: str | None = None
    hidden: int = 0

    @property
    def is_terminal(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    @property
    def token(self) -> str:
        """The digest of the job as listed now, to compare with its marker's."""
        return fingerprint_token(self.fingerprint)

    @classmethod
    def from_entry(cls, entry: object, *, page: int, position: int = 0) -> ListedJob:
        """Read one entry of the ``jobs`` list; an unusable one comes with a ``problem``.

        >>> ListedJob.from_entry({"status": "done"}, page=2, position=4).job_id
        '(page 2 entry 4)'
        """
        job_id = _usable_id(entry.get("job_id") if isinstance(entry, dict) else None)
        if not isinstance(entry, dict) or job_id is None:
            return cls(
                job_id=f"(page {page} entry {position})",
                status=None,
                created_at=None,
                fingerprint={},
                problem=f"Expected entry {position} of GET /v1/batch/jobs page {page} to be an "
                f"object with a plain `job_id` (letters, digits, '-', '_'), got {shown(entry)}.",
            )
        fingerprint = {name: entry.get(name) for name in FINGERPRINT_FIELDS}
        status = entry.get("status")
        return cls(
            job_id=job_id,
            status=status if isinstance(status, str) else None,
            created_at=_lenient_timestamp(entry.get("created_at")),
            fingerprint=fingerprint,
            problem=_fingerprint_problem(fingerprint, job_id),
        )


def iter_account_jobs(
    client: ApiClient, *, page_size: int = LIST_PAGE_SIZE, concurrency: int = 1
) -> Iterator[ListedJob]:
    """Yield every job of the account once, reading every page of the job list.

    Each entry's fields are recorded (the fingerprint), so the API key is hidden in them
    first, as on the road (an entry whose id holds the key cannot be exported).
    """
    seen: set[str] = set()
    for page, body in _pages(client, page_size=page_size, width=max(1, concurrency)):
        for position, listed in enumerate(body["jobs"]):
            entry, _ = client.secret.hide(listed)
            job = ListedJob.from_entry(entry, page=page, position=position)
            # Counted where it would have been written: the listed fields a store records.
            fields = listed if isinstance(listed, dict) else {}
            _, hidden = client.secret.hide([fields.get(name) for name in FINGERPRINT_FIELDS])
            job = replace(job, hidden=hidden) if hidden else job
            if job.job_id not in seen:
                seen.add(job.job_id)
                yield job


def _pages(client: ApiClient, *, page_size: int, width: int) -> Iterator[tuple[int, Any]]:
    """Every page of the listing, in order: page 1, then ``width`` pages at a time.

    Reading in waves bounds what a ``page_count`` that lies costs: one wave past the end.
    """
    body = client.list_jobs(page=1, page_size=page_size)
    yield 1, body
    page = 1
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="listing") as pool:
        while not _is_last(body, page, page_size):
            last = min(_page_count(body) or _MAX_PAGES, _MAX_PAGES)
            wave = range(page + 1, min(page + width, last) + 1)
            if not wave:
                return
            bodies = pool.map(lambda n: client.list_jobs(page=n, page_size=page_size), wave)
            for page, body in zip(wave, list(bodies), strict=True):
                yield page, body
                if _is_last(body, page, page_size):
                    return


def _usable_id(job_id: object) -> str | None:
    """The listed id in the form requests carry, or None when it is no usable id."""
    if not isinstance(job_id, str):
        return None
    try:
        return check_job_id(job_id)
    except InvalidInputError:
        return None


def _page_count(body: Any) -> int | None:
    count = body.get("page_count")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _is_last(body: Any, page: int, page_size: int) -> bool:
    """An empty page ends the listing, as does the last page by count, or a short page."""
    entries, count = body["jobs"], _page_count(body)
    if not entries or page >= _MAX_PAGES:
        return True
    return page >= count if count is not None else len(entries) < page_size


def _fingerprint_problem(fingerprint: dict[str, Any], job_id: str) -> str | None:
    """Why the listed fields cannot be recorded, or None: each must be a short scalar."""
    for name, value in fingerprint.items():
        fits = value is None or isinstance(value, bool | int | str)
        if isinstance(value, float):
            fits = math.isfinite(value)
        if isinstance(value, str):
            fits = len(value) <= _MAX_FIELD_CHARS
        if isinstance(value, int) and not isinstance(value, bool):
            fits = abs(value) < 2**63
        if not fits:
            return (
                f"Expected `{name}` of job {job_id} in GET /v1/batch/jobs to be a string, a "
                f"number or null, got {shown(value)}; the job is exported once it is listed "
                "correctly."
            )
    return None


@dataclass(frozen=True, kw_only=True)
class TimeWindow:
    """Jobs created at or after ``since`` and before ``until`` (either may be open).

    >>> window = TimeWindow(since=parse_when("2026-05-01", option="--since"))
    >>> window.contains(parse_when("2026-05-01T00:00:00Z", option="--since"))
    True
    """

    since: datetime | None = None
    until: datetime | None = None

    @property
    def is_open(self) -> bool:
        """True when neither end is set: every job is in the window."""
        return self.since is None and self.until is None

    def contains(self, created_at: datetime | None) -> bool:
        """Whether a job created at ``created_at`` is in the window.

        A job without a readable ``created_at`` is only in an open window.
        """
        if created_at is None:
            return self.is_open
        if self.since is not None and created_at < self.since:
            return False
        return self.until is None or created_at < self.until


def parse_when(text: str, *, option: str) -> datetime:
    """An ISO date or datetime given on the command line, as an aware UTC datetime.

    A date means its midnight UTC; a datetime without an offset is UTC.

    >>> parse_when("2026-05-26", option="--since").isoformat()
    '2026-05-26T00:00:00+00:00'
    """
    try:
        # Python 3.11 reads a bare date as its midnight, and a trailing Z as UTC.
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInputError(
            f"{option} {text!r} is not an ISO date or datetime: use e.g. 2026-05-26 "
            "or 2026-05-26T10:30:00Z (UTC unless an offset is given)."
        ) from None


def _lenient_timestamp(value: object) -> datetime | None:
    """The listing's ``created_at``, or None when it is missing or unreadable.

    The status endpoint's own timestamp is what the export records; here it only serves the
    time window and the order of work.
    """
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: a moment that UTC cannot hold
        return None
