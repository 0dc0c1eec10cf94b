"""Every job of the account, from every page of ``GET /v1/batch/jobs``, and the time window.

The listing answers ``page_count`` with each page; a page that is empty or short ends it too,
in case the count is missing. Jobs created while the listing is read push older ones onto the
next page, so a job can come twice: it is kept once. A job that moves out of reach while the
listing is read is picked up by the next sync.

A time window is sent as the listing's own filters (``start_date``, ``end_date``), so that a
sync from a watermark (:mod:`batch_export.sync.watermark`) reads a page or two, not the
account's history; what comes back is still checked against the window by the plan.

What a listing may cost is bounded whatever the server claims: at most ``max_listed`` entries
(:data:`MAX_LISTED_JOBS` by default, ``--max-listed``), each kept as a compact
:class:`ListedJob` (its listed fields as a tuple, about 400 bytes); past that, one sentence and
exit 7. Example (against the bundled emulator):

    >>> from batch_export.fetch.client import ApiClient
    >>> from batch_export.testing import Emulator, generate_account
    >>> with Emulator(jobs=generate_account(jobs=12, processing=2), api_key="k") as emu:
    ...     stats = ListingStats()
    ...     client = ApiClient(base_url=emu.base_url, api_key="k")
    ...     jobs = list(iter_account_jobs(client, stats=stats))
    >>> len(jobs), sum(job.is_terminal for job in jobs), stats.requests
    (12, 10, 1)
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_export.api import MAX_LIST_PAGE_SIZE
from batch_export.errors import InvalidInputError, ResponseShapeError
from batch_export.fetch.client import ApiClient
from batch_export.fetch.job_id import usable_job_id
from batch_export.job import TERMINAL_STATUSES, JobStatus
from batch_export.sync.layout import fingerprint_token
from batch_export.text import shown

__all__ = [
    "FINGERPRINT_FIELDS",
    "LIST_PAGE_SIZE",
    "MAX_LISTED_JOBS",
    "ListedJob",
    "ListingStats",
    "TimeWindow",
    "iter_account_jobs",
    "parse_when",
]

# The most the listing takes (the API's bound): fewer requests for the same jobs.
LIST_PAGE_SIZE = MAX_LIST_PAGE_SIZE
# The most entries one sync reads from the listing: about 80 MB of listed jobs at worst.
MAX_LISTED_JOBS = 200_000

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

# A listed status, count or timestamp is short; anything longer is not one.
_MAX_FIELD_CHARS = 256
# One string object per status for every listed job, not one per entry.
_STATUSES = {status: status for status in (*TERMINAL_STATUSES, "queued", "processing")}


@dataclass(frozen=True, slots=True, kw_only=True)
class ListedJob:
    """One entry of the account's job list, kept small: a sync may hold many thousands.

    ``values`` are the entry's :data:`FINGERPRINT_FIELDS`, in that order (see
    :attr:`fingerprint`). ``problem`` says why an entry cannot be exported (no usable
    ``job_id``, a listed field of the wrong type): such an entry fails alone, and the others
    go on. Without a usable id, ``job_id`` names the entry's place in the listing instead; a
    UUID is in its canonical form (:func:`~batch_export.fetch.job_id.check_job_id`), as the
    stores record it. ``hidden`` counts the runs of the API key hidden in the fields a store
    records (see :func:`iter_account_jobs`).

    >>> job = ListedJob.of("j1", {"status": "completed", "completed_urls": 3})
    >>> job.fingerprint["completed_urls"], job.is_terminal
    (3, True)
    """

    job_id: str
    status: str | None
    created_at: datetime | None
    values: tuple[Any, ...] = ()
    problem: str | None = None
    hidden: int = 0

    @property
    def fingerprint(self) -> dict[str, Any]:
        """The listed fields that the destination records with the job."""
        return dict(zip(FINGERPRINT_FIELDS, self.values, strict=False))

    @property
    def is_terminal(self) -> bool:
        """True once the job is completed, failed or cancelled."""
        return self.status in TERMINAL_STATUSES

    @property
    def has_id(self) -> bool:
        """False for an entry listed without a usable ``job_id`` (named by its place)."""
        return bool(self.values)

    @property
    def token(self) -> str:
        """The digest of the job as listed now, to compare with its marker's."""
        return fingerprint_token(self.fingerprint)

    @classmethod
    def of(
        cls, job_id: str, fields: Mapping[str, Any], *, created_at: datetime | None = None
    ) -> ListedJob:
        """A listed job from its fields by name (those not in :data:`FINGERPRINT_FIELDS` are
        not kept), its status among them."""
        values = tuple(fields.get(name) for name in FINGERPRINT_FIELDS)
        status = values[0]
        return cls(
            job_id=job_id,
            status=_STATUSES.get(status, status) if isinstance(status, str) else None,
            created_at=created_at,
            values=values,
            problem=_fingerprint_problem(values, job_id),
        )

    @classmethod
    def from_entry(cls, entry: object, *, page: int, position: int = 0) -> ListedJob:
        """Read one entry of the ``jobs`` list; an unusable one comes with a ``problem``.

        >>> ListedJob.from_entry({"status": "done"}, page=2, position=4).job_id
        '(page 2 entry 4)'
        """
        job_id = usable_job_id(entry.get("job_id") if isinstance(entry, dict) else None)
        if not isinstance(entry, dict) or job_id is None:
            return cls(
                job_id=f"(page {page} entry {position})",
                status=None,
                created_at=None,
                problem=f"Expected entry {position} of GET /v1/batch/jobs page {page} to be an "
                f"object with a plain `job_id` (letters, digits, '-', '_'), got {shown(entry)}.",
            )
        return cls.of(job_id, entry, created_at=_lenient_timestamp(entry.get("created_at")))

    @classmethod
    def from_status(cls, job: JobStatus) -> ListedJob:
        """A job read by its id (``GET /v1/batch/{job_id}``), as its listing entry shows it:
        ``accepted_urls`` is the status's ``total_urls``, and ``cancelled_urls`` is left out
        as the listing leaves it out, so that the token is the one a listing would give."""
        fields = {
            "status": job.status,
            "accepted_urls": job.total_urls,
            "completed_urls": job.completed_urls,
            "failed_urls": job.failed_urls,
            "completed_at": job.completed_at,
        }
        return cls.of(job.job_id, fields, created_at=_lenient_timestamp(job.created_at))


class ListingStats:
    """What reading the listing cost: requests made (pages asked) and entries read.

    Thread-safe: the pages of a wave are asked from several threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.entries = 0

    def count_request(self) -> None:
        """One more page asked."""
        with self._lock:
            self.requests += 1


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

    def filters(self) -> dict[str, str]:
        """The window as the listing's ``start_date`` and ``end_date``.

        ``end_date`` keeps jobs created *on or before* it, and ``until`` is exclusive: it is
        sent one microsecond earlier.

        >>> TimeWindow(since=datetime(2026, 5, 1, tzinfo=UTC)).filters()
        {'start_date': '2026-05-01T00:00:00Z'}
        """
        filters = {}
        if self.since is not None:
            filters["start_date"] = _iso(self.since)
        if self.until is not None:
            filters["end_date"] = _iso(self.until - timedelta(microseconds=1))
        return filters


def iter_account_jobs(
    client: ApiClient,
    *,
    page_size: int = LIST_PAGE_SIZE,
    concurrency: int = 1,
    window: TimeWindow | None = None,
    max_listed: int = MAX_LISTED_JOBS,
    stats: ListingStats | None = None,
) -> Iterator[ListedJob]:
    """Yield every job of the account once (of ``window``, when given), page after page.

    Each entry's fields are recorded (the fingerprint), so the API key is hidden in them
    first, as on the road (an entry whose id holds the key cannot be exported). More than
    ``max_listed`` entries is a :class:`~batch_export.errors.ResponseShapeError`.
    """
    counted = stats or ListingStats()
    filters = (window or TimeWindow()).filters()

    def ask(page: int) -> Any:
        counted.count_request()
        return client.list_jobs(page=page, page_size=page_size, filters=filters)

    seen: set[str] = set()
    pages = _pages(ask, page_size=page_size, width=max(1, concurrency))
    for page, body in _bounded(pages, counted, page_size=page_size, max_listed=max_listed):
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


def _bounded(
    pages: Iterator[tuple[int, Any]], stats: ListingStats, *, page_size: int, max_listed: int
) -> Iterator[tuple[int, Any]]:
    """The pages, counted; past ``max_listed`` entries (or twice the pages they fill), the
    listing is refused rather than held."""
    max_pages = 2 * math.ceil(max_listed / page_size) + 10
    for page, body in pages:
        stats.entries += len(body["jobs"])
        if stats.entries > max_listed or page > max_pages:
            raise ResponseShapeError(
                f"GET /v1/batch/jobs listed more than {max_listed:,} jobs ({page:,} pages), "
                "more than one sync reads (--max-listed): sync the account in parts with "
                "--since and --until, or raise --max-listed.",
                page=page,
            )
        yield page, body


def _pages(ask: Callable[[int], Any], *, page_size: int, width: int) -> Iterator[tuple[int, Any]]:
    """Every page of the listing (``ask(page)``), in order: page 1, then ``width`` at a time.

    Reading in waves bounds what a ``page_count`` that lies costs: one wave past the end.
    """
    body = ask(1)
    yield 1, body
    page = 1
    with ThreadPoolExecutor(max_workers=width, thread_name_prefix="listing") as pool:
        while not _is_last(body, page, page_size):
            count = _page_count(body)
            last = page + width if count is None else min(page + width, count)
            wave = range(page + 1, last + 1)
            if not wave:
                return
            for page, body in zip(wave, list(pool.map(ask, wave)), strict=True):
                yield page, body
                if _is_last(body, page, page_size):
                    return


def _page_count(body: Any) -> int | None:
    count = body.get("page_count")
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _is_last(body: Any, page: int, page_size: int) -> bool:
    """An empty page ends the listing, as does the last page by count, or a short page."""
    entries, count = body["jobs"], _page_count(body)
    if not entries:
        return True
    return page >= count if count is not None else len(entries) < page_size


def _fingerprint_problem(values: tuple[Any, ...], job_id: str) -> str | None:
    """Why the listed fields cannot be recorded, or None: each must be a short scalar."""
    for name, value in zip(FINGERPRINT_FIELDS, values, strict=True):
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


def _iso(moment: datetime) -> str:
    """A UTC moment as the API writes one: ``2026-05-26T10:30:00Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
