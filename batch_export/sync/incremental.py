"""One sync's listing: from the destination's watermark when it has one, the jobs it still
waits for read by their id, and the watermark it leaves for the next sync.

:func:`list_account` decides how to list (see :mod:`batch_export.sync.watermark`):

- with a watermark that covers the window asked for, and no ``full``: only the jobs created
  from the watermark less its margin, then each waiting job that this listing did not show,
  read by id (``GET /v1/batch/{job_id}``, one item): a job that finished since is planned as
  a listed one would be, a job the API no longer knows (404) is dropped, and one that cannot
  be read fails alone and stays waiting;
- otherwise, or when the listing from the watermark does not show its anchor: every job of
  the window, as a sync without a watermark does.

:func:`next_watermark` is what the sync then leaves in the destination: the newest job listed
(or, when some jobs were left for later by ``--limit``, the oldest of those), and every job
it still waits for.

Example (against the bundled emulator): a second sync lists from the watermark.

    >>> from batch_export.fetch.client import ApiClient
    >>> from batch_export.sync.store import StoreState
    >>> from batch_export.testing import Emulator, generate_account
    >>> with Emulator(jobs=generate_account(jobs=300, processing=0), api_key="k") as emu:
    ...     client = ApiClient(base_url=emu.base_url, api_key="k")
    ...     first = list_account(client, StoreState(), ListingOptions())
    ...     mark = next_watermark(first, failed=())
    ...     second = list_account(client, StoreState(watermark=mark.to_document()),
    ...                           ListingOptions())
    >>> (first.plan.listed, first.stats.requests), (second.plan.listed, second.stats.requests)
    ((300, 3), (7, 1))
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from batch_export.errors import AuthenticationError, BatchExportError, JobNotFoundError
from batch_export.fetch.client import ApiClient
from batch_export.sync.listing import (
    MAX_LISTED_JOBS,
    ListedJob,
    ListingStats,
    TimeWindow,
    iter_account_jobs,
)
from batch_export.sync.plan import Plan, plan_sync
from batch_export.sync.store import StoreState
from batch_export.sync.watermark import MAX_WAITING, WATERMARK_MARGIN, Watermark

__all__ = ["Listing", "ListingOptions", "list_account", "next_watermark"]


@dataclass(frozen=True, kw_only=True)
class ListingOptions:
    """How a sync lists: its time window, ``--limit``, ``--full``, the watermark's margin,
    the most entries it reads (``--max-listed``) and the pages asked at once."""

    window: TimeWindow = field(default_factory=TimeWindow)
    limit: int | None = None
    full: bool = False
    margin: timedelta = WATERMARK_MARGIN
    max_listed: int = MAX_LISTED_JOBS
    concurrency: int = 1


@dataclass(kw_only=True)
class Listing:
    """What one sync listed and how: the plan, the window asked of the listing, the
    watermark it started from (None: every job of the window was listed), what it cost."""

    plan: Plan
    asked: TimeWindow
    used: Watermark | None
    stats: ListingStats
    read_directly: int = 0
    read_planned: int = 0
    gone: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, BatchExportError]] = field(default_factory=list)
    carried: dict[str, datetime | None] = field(default_factory=dict)

    def to_summary(self) -> dict[str, Any]:
        """How the jobs were listed, for the run summary (JSON-ready)."""
        return {
            "from_watermark": self.used is not None,
            "since": None if self.asked.since is None else self.asked.since.isoformat(),
            "until": None if self.asked.until is None else self.asked.until.isoformat(),
            "read_directly": self.read_directly,
            "gone": len(self.gone),
        }


class _NotThisAccount(Exception):
    """The listing from a watermark did not show its anchor."""


def list_account(client: ApiClient, state: StoreState, options: ListingOptions) -> Listing:
    """List the account's jobs for one sync and plan it (see the module's docstring)."""
    stored = None if options.full else Watermark.from_document(state.watermark)
    stats = ListingStats()
    if stored is not None:
        asked = stored.listing_window(options.window, margin=options.margin)
        if asked is not None:
            try:
                return _from_watermark(client, state, stored, asked, options, stats)
            except _NotThisAccount:
                pass  # listed again in full below; the requests made so far are counted
    listed = iter_account_jobs(
        client,
        concurrency=options.concurrency,
        window=options.window,
        max_listed=options.max_listed,
        stats=stats,
    )
    plan = _plan(listed, state, options)
    return Listing(plan=plan, asked=options.window, used=None, stats=stats)


def _plan(listed: Iterator[ListedJob], state: StoreState, options: ListingOptions) -> Plan:
    return plan_sync(
        listed,
        recorded=state.recorded,
        whole=state.whole,
        window=options.window,
        limit=options.limit,
    )


def _from_watermark(
    client: ApiClient,
    state: StoreState,
    stored: Watermark,
    asked: TimeWindow,
    options: ListingOptions,
    stats: ListingStats,
) -> Listing:
    listing = Listing(
        plan=Plan(listed=0, outside_window=0, to_export=()),
        asked=asked,
        used=stored,
        stats=stats,
    )
    watched = {*stored.waiting, stored.anchor}
    seen: set[str] = set()
    before = 0

    def listed() -> Iterator[ListedJob]:
        nonlocal before
        for job in iter_account_jobs(
            client,
            concurrency=options.concurrency,
            window=asked,
            max_listed=options.max_listed,
            stats=stats,
        ):
            if not asked.contains(job.created_at):
                before += 1  # listed, though created outside the window asked for
                continue
            if job.job_id in watched:
                seen.add(job.job_id)
            yield job
        if stored.anchor not in seen:
            raise _NotThisAccount
        yield from _read_waiting(client, stored, seen, options, listing)

    plan = _plan(listed(), state, options)
    # `listed` counts what the listing gave; the jobs read by id are `read_directly`.
    listed_count = plan.listed + before - listing.read_planned
    listing.plan = replace(plan, listed=listed_count, outside_window=plan.outside_window + before)
    return listing


def _read_waiting(
    client: ApiClient,
    stored: Watermark,
    seen: Collection[str],
    options: ListingOptions,
    listing: Listing,
) -> Iterator[ListedJob]:
    """The waiting jobs that the listing did not show, read by id, as listed jobs."""
    window = options.window
    unseen = {job_id: when for job_id, when in stored.waiting.items() if job_id not in seen}
    listing.carried = {job_id: when for job_id, when in unseen.items() if not window.contains(when)}
    to_read = [job_id for job_id, when in unseen.items() if window.contains(when)]
    if not to_read:
        return
    listing.read_directly = len(to_read)
    with ThreadPoolExecutor(max(1, options.concurrency), thread_name_prefix="waiting") as pool:
        for job_id, outcome in zip(
            to_read, pool.map(lambda i: _read(client, i), to_read), strict=True
        ):
            if isinstance(outcome, JobNotFoundError):
                listing.gone.append(job_id)
            elif isinstance(outcome, BatchExportError):
                listing.unreadable.append((job_id, outcome))
                listing.carried[job_id] = unseen[job_id]
            elif not window.contains(outcome.created_at):
                listing.carried[job_id] = outcome.created_at
            else:
                listing.read_planned += 1
                yield outcome


def _read(client: ApiClient, job_id: str) -> ListedJob | BatchExportError:
    """A waiting job as its status shows it now, or why it could not be read."""
    try:
        page = client.fetch_page(job_id, page=1, page_size=1)
    except AuthenticationError:
        raise  # the key, not this job: the whole sync stops
    except BatchExportError as error:
        return error
    job, hidden = client.secret.hide_in_job(page.job)
    listed = ListedJob.from_status(job)
    return replace(listed, hidden=hidden) if hidden else listed


def next_watermark(listing: Listing, *, failed: Collection[str]) -> Watermark | None:
    """The watermark that a sync leaves after ``listing``, the jobs in ``failed`` not loaded;
    None when none can be given (nothing dated was listed, or a job left for later has no
    ``created_at``), and the destination keeps the one it has.
    """
    plan = listing.plan
    waiting = dict(listing.carried)
    waiting.update((job.job_id, job.created_at) for job in plan.not_finished)
    waiting.update((job.job_id, job.created_at) for job in plan.unusable if job.has_id)
    waiting.update(
        (p.job.job_id, p.job.created_at) for p in plan.to_export if p.job.job_id in failed
    )
    kept, overflow = _bounded(waiting)
    if kept is None:
        return None
    later = [(job.created_at, job.job_id) for job in plan.over_limit] + overflow
    if any(created is None for created, _ in later):
        return None
    dated = [(created, job_id) for created, job_id in later if created is not None]
    if dated:
        newest, anchor = min(dated)
    elif plan.newest is not None and plan.newest.created_at is not None:
        newest, anchor = plan.newest.created_at, plan.newest.job_id
    else:
        return None
    floor = listing.asked.since if listing.used is None else listing.used.floor
    return Watermark(floor=floor, newest=newest, anchor=anchor, waiting=kept)


def _bounded(
    waiting: dict[str, datetime | None],
) -> tuple[dict[str, datetime | None] | None, list[tuple[datetime | None, str]]]:
    """The waiting jobs to keep (at most :data:`MAX_WAITING`, the oldest, the undated
    first), and the newer ones left to the next listing; None when undated ones alone are
    too many."""
    if len(waiting) <= MAX_WAITING:
        return waiting, []
    undated = sorted(job_id for job_id, when in waiting.items() if when is None)
    if len(undated) > MAX_WAITING:
        return None, []
    dated = sorted((when, job_id) for job_id, when in waiting.items() if when is not None)
    room = MAX_WAITING - len(undated)
    kept: dict[str, datetime | None] = dict.fromkeys(undated)
    kept.update((job_id, when) for when, job_id in dated[:room])
    return kept, [(when, job_id) for when, job_id in dated[room:]]
