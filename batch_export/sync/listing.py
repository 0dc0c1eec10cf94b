"""Every job of the account, from every page of ``GET /v1/batch/jobs``, and the time window.

The listing answers ``page_count`` with each page; a page that is empty or short ends it too,
in case the count is missing. Jobs created while the listing is read push older ones onto the
next page, so a job can come twice: it is kept once. A job that moves out of reach while the
listing is read is picked up by the next sync.

Example (against the bundled emulator):

    >>> from batch_export.client import ApiClient
    >>> from batch_export.testing import Emulator, generate_account
    >>> with Emulator(jobs=generate_account(jobs=12, processing=2), api_key="k") as emu:
    ...     jobs = list(iter_account_jobs(ApiClient(base_url=emu.base_url, api_key="k")))
    >>> len(jobs), sum(job.is_terminal for job in jobs)
    (12, 10)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from batch_export.client import ApiClient
from batch_export.errors import InvalidInputError, ResponseShapeError
from batch_export.job import TERMINAL_STATUSES
from batch_export.sync.layout import fingerprint_token

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


@dataclass(frozen=True, kw_only=True)
class ListedJob:
    """One entry of the account's job list."""

    job_id: str
    status: str | None
    created_at: datetime | None
    fingerprint: dict[str, Any]

    @property
    def is_terminal(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    @property
    def token(self) -> str:
        """The digest of the job as listed now, to compare with its marker's."""
        return fingerprint_token(self.fingerprint)

    @classmethod
    def from_entry(cls, entry: object, *, page: int) -> ListedJob:
        """Read one entry of the ``jobs`` list; raise when it has no usable ``job_id``."""
        if not isinstance(entry, dict) or not isinstance(entry.get("job_id"), str):
            raise ResponseShapeError(
                f"Expected each entry of GET /v1/batch/jobs page {page} to be an object with a "
                f"string `job_id`, got {_excerpt(entry)}.",
                page=page,
            )
        status = entry.get("status")
        return cls(
            job_id=entry["job_id"],
            status=None if status is None else str(status),
            created_at=_lenient_timestamp(entry.get("created_at")),
            fingerprint={name: entry.get(name) for name in FINGERPRINT_FIELDS},
        )


def iter_account_jobs(client: ApiClient, *, page_size: int = LIST_PAGE_SIZE) -> Iterator[ListedJob]:
    """Yield every job of the account once, reading every page of the job list."""
    seen: set[str] = set()
    page = 1
    while page <= _MAX_PAGES:
        body = client.list_jobs(page=page, page_size=page_size)
        entries = body["jobs"]
        for entry in entries:
            job = ListedJob.from_entry(entry, page=page)
            if job.job_id not in seen:
                seen.add(job.job_id)
                yield job
        page_count = body.get("page_count")
        if isinstance(page_count, int) and not isinstance(page_count, bool):
            if page >= page_count or not entries:
                return
        elif len(entries) < page_size:
            return
        page += 1


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
    except ValueError:
        raise InvalidInputError(
            f"{option} {text!r} is not an ISO date or datetime: use e.g. 2026-05-26 "
            "or 2026-05-26T10:30:00Z (UTC unless an offset is given)."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _lenient_timestamp(value: object) -> datetime | None:
    """The listing's ``created_at``, or None when it is missing or unreadable.

    The status endpoint's own timestamp is what the export records; here it only serves the
    time window and the order of work.
    """
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _excerpt(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
