"""The watermark: its document (and what is not one), where the next listing starts, and
the watermark a sync leaves after each kind of run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batch_export.sync.incremental import Listing, next_watermark
from batch_export.sync.listing import ListedJob, ListingStats, TimeWindow
from batch_export.sync.plan import plan_sync
from batch_export.sync.watermark import MAX_DOCUMENT_BYTES, MAX_WAITING, Watermark

T0 = datetime(2026, 5, 26, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)
MARK = Watermark(floor=None, newest=T0, anchor="j9", waiting={"j1": T0 - 5 * HOUR, "j2": None})


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def job(job_id: str, hours: float | None, status: str = "completed") -> ListedJob:
    created = None if hours is None else at(hours)
    return ListedJob.of(job_id, {"status": status, "completed_urls": 1}, created_at=created)


# --- the document ---------------------------------------------------------------------------


def test_the_document_is_json_and_gives_the_same_watermark_back() -> None:
    document = MARK.to_document()
    assert json.loads(document) == {
        "watermark_version": 1,
        "floor": None,
        "newest": "2026-05-26T12:00:00+00:00",
        "anchor": "j9",
        "waiting": {"j1": "2026-05-26T07:00:00+00:00", "j2": None},
    }
    assert Watermark.from_document(document) == MARK
    assert Watermark.from_document(document.encode()) == MARK
    assert MARK.to_document() == document  # the same mark, the same text: nothing rewritten


def _with(**changes: Any) -> str:
    return json.dumps({**json.loads(MARK.to_document()), **changes})


@pytest.mark.parametrize(
    "document",
    [
        None,
        "",
        "not json",
        "[1, 2]",
        '"text"',
        _with(watermark_version=2),
        _with(newest=None),
        _with(newest="yesterday"),
        _with(newest="2026-05-26T12:00:00"),  # no offset: not one we wrote
        _with(newest=17),
        _with(floor=[]),
        _with(anchor=None),
        _with(waiting=["j1"]),
        _with(waiting={"j1": 5}),
        _with(waiting={"j1": "9999-12-31T23:59:59-23:00"}),
        json.dumps({"watermark_version": 1}),
        "[" * 100_000 + "]" * 100_000,
        _with(pad="x" * MAX_DOCUMENT_BYTES),
    ],
)
def test_anything_else_is_no_watermark(document: str | None) -> None:
    assert Watermark.from_document(document) is None


# --- where the next listing starts ---------------------------------------------------------


@pytest.mark.parametrize(
    ("floor", "since", "until", "expected"),
    [
        (None, None, None, (at(-1), None)),  # the watermark less an hour
        (None, at(-3), None, (at(-1), None)),
        (None, at(-0.5), None, (at(-0.5), None)),  # --since later than that: from --since
        (None, at(0), None, (at(0), None)),
        (None, at(0.5), None, None),  # after the newest: nothing to gain
        (None, None, at(2), (at(-1), at(2))),
        (None, None, at(0), None),  # the anchor would be outside the window
        (at(-48), None, None, None),  # the watermark does not cover the start of the account
        (at(-48), at(-72), None, None),
        (at(-48), at(-48), None, (at(-1), None)),
        (at(-48), at(-24), at(1), (at(-1), at(1))),
    ],
)
def test_the_listing_starts_from_the_watermark_when_it_covers_the_window(
    floor: datetime | None,
    since: datetime | None,
    until: datetime | None,
    expected: tuple[datetime, datetime | None] | None,
) -> None:
    mark = Watermark(floor=floor, newest=T0, anchor="j9")
    asked = mark.listing_window(TimeWindow(since=since, until=until))
    assert (None if asked is None else (asked.since, asked.until)) == expected


def test_the_margin_is_a_parameter() -> None:
    asked = MARK.listing_window(TimeWindow(), margin=timedelta(minutes=10))
    assert asked is not None and asked.since == at(-1 / 6)


# --- the watermark a sync leaves -----------------------------------------------------------


def listing(
    jobs: list[ListedJob],
    *,
    used: Watermark | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    carried: dict[str, datetime | None] | None = None,
) -> Listing:
    window = TimeWindow(since=since)
    plan = plan_sync(jobs, recorded={}, whole=set(), window=window, limit=limit)
    return Listing(
        plan=plan, asked=window, used=used, stats=ListingStats(), carried=dict(carried or {})
    )


def test_after_a_full_listing_the_newest_job_listed_and_every_job_not_finished() -> None:
    jobs = [job("a", -30), job("b", -2, "processing"), job("c", 0), job("d", -1, "queued")]
    mark = next_watermark(listing(jobs), failed=())
    assert mark == Watermark(
        floor=None, newest=at(0), anchor="c", waiting={"b": at(-2), "d": at(-1)}
    )


def test_since_is_the_floor_of_a_watermark_listed_from_it() -> None:
    mark = next_watermark(listing([job("a", -3)], since=at(-10)), failed=())
    assert mark is not None and mark.floor == at(-10)


def test_from_a_watermark_its_floor_stays_and_its_waiting_jobs_carry_on() -> None:
    used = Watermark(floor=at(-99), newest=at(-1), anchor="a", waiting={"w": at(-50)})
    jobs = [job("a", -1), job("n", 0.5)]
    mark = next_watermark(listing(jobs, used=used, since=at(-2), carried={"w": at(-50)}), failed=())
    assert mark == Watermark(floor=at(-99), newest=at(0.5), anchor="n", waiting={"w": at(-50)})


def test_jobs_that_failed_to_load_and_unusable_entries_with_an_id_wait() -> None:
    bad = ListedJob.of("u", {"status": "completed", "completed_urls": [1]}, created_at=at(-4))
    nameless = ListedJob(job_id="(page 1 entry 3)", status=None, created_at=None, problem="no id")
    jobs = [job("a", -3), job("b", -2), bad, nameless]
    mark = next_watermark(listing(jobs), failed={"a"})
    assert mark is not None and mark.waiting == {"a": at(-3), "u": at(-4)}
    assert (mark.anchor, mark.newest) == ("b", at(-2))


def test_jobs_left_by_the_limit_hold_the_watermark_back_to_the_oldest_of_them() -> None:
    jobs = [job(f"j{n}", -n) for n in range(6)]
    mark = next_watermark(listing(jobs, limit=2), failed=())
    assert mark is not None and (mark.anchor, mark.newest) == ("j3", at(-3))
    # A job left for later without a date cannot be found again from a watermark: none.
    assert next_watermark(listing([*jobs, job("x", None)], limit=2), failed=()) is None


def test_past_the_most_waiting_jobs_the_newest_are_left_to_the_next_listing() -> None:
    running = [job(f"r{n:04d}", -n / 100, "processing") for n in range(MAX_WAITING + 5)]
    mark = next_watermark(listing([job("z", 1), *running]), failed=())
    assert mark is not None and len(mark.waiting) == MAX_WAITING
    newest_kept = max(when for when in mark.waiting.values() if when is not None)
    assert mark.newest > newest_kept and mark.anchor == "r0004"  # the oldest one left out
    assert Watermark.from_document(mark.to_document()) == mark
    assert len(mark.to_document()) < MAX_DOCUMENT_BYTES


def test_nothing_dated_listed_leaves_no_watermark() -> None:
    assert next_watermark(listing([]), failed=()) is None
    assert next_watermark(listing([job("a", None)]), failed=()) is None
