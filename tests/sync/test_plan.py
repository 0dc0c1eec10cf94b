"""Which jobs a sync exports and which it skips: table-driven over the cases that matter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from batch_export.sync.listing import ListedJob, TimeWindow
from batch_export.sync.plan import plan_sync

T0 = datetime(2026, 5, 26, tzinfo=UTC)
DONE = {"status": "completed", "completed_urls": 3, "failed_urls": 0, "completed_at": "x"}


def listed(
    job_id: str, *, hours: int = 0, status: str = "completed", **changes: object
) -> ListedJob:
    fields = {**DONE, "status": status, **changes}
    return ListedJob.of(job_id, fields, created_at=T0 + timedelta(hours=hours))


def recorded(job_id: str, **changes: object) -> dict[str, set[str]]:
    """What a marker of ``job_id`` records, as exported when it had ``changes``."""
    return {job_id: {listed(job_id, **changes).token}}  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("job", "markers", "whole", "expected"),
    [
        (listed("a"), {}, False, ("export", "new")),
        (listed("a"), recorded("a"), True, ("skip", "unchanged")),
        (listed("a", completed_urls=4), recorded("a"), True, ("export", "changed")),
        (listed("a", completed_at="y"), recorded("a"), True, ("export", "changed")),
        (listed("a", status="failed"), recorded("a"), True, ("export", "changed")),
        (listed("a"), {"a": {"0000000000000000"}}, True, ("export", "changed")),
        (listed("a"), {"a": {listed("a").token, "00"}}, True, ("export", "changed")),
        (listed("a"), recorded("a"), False, ("export", "incomplete")),
        (listed("a", status="processing"), {}, False, ("skip", "not_finished")),
        (listed("a", status="queued"), recorded("a"), True, ("skip", "not_finished")),
    ],
)
def test_each_job_is_exported_or_skipped_for_a_reason(
    job: ListedJob, markers: dict[str, set[str]], whole: bool, expected: tuple[str, str]
) -> None:
    plan = plan_sync(
        [job], recorded=markers, whole={job.job_id} if whole else set(), window=TimeWindow()
    )
    outcome = [("export", p.reason) for p in plan.to_export] + [
        ("skip", reason) for _, reason in plan.iter_skipped()
    ]
    assert outcome == [expected]


def test_oldest_first_and_the_limit_takes_the_oldest() -> None:
    jobs = [listed("c", hours=3), listed("a", hours=1), listed("b", hours=2), listed("z", hours=0)]
    plan = plan_sync(jobs, recorded=recorded("z"), whole={"z"}, window=TimeWindow(), limit=2)
    assert [p.job.job_id for p in plan.to_export] == ["a", "b"]
    assert list(plan.iter_skipped()) == [("z", "unchanged"), ("c", "over_limit")]
    assert plan.skipped_counts() == {"unchanged": 1, "over_limit": 1}
    assert plan.over_limit == (jobs[0],) and plan.newest == jobs[0]


@pytest.mark.parametrize(
    ("since_h", "until_h", "expected"),
    [
        (None, None, ["h0", "h1", "h2", "h3"]),
        (1, None, ["h1", "h2", "h3"]),  # since is inclusive
        (None, 2, ["h0", "h1"]),  # until is exclusive
        (1, 3, ["h1", "h2"]),
        (5, None, []),
    ],
)
def test_the_time_window_bounds_created_at(
    since_h: int | None, until_h: int | None, expected: list[str]
) -> None:
    jobs = [listed(f"h{h}", hours=h) for h in range(4)]
    window = TimeWindow(
        since=None if since_h is None else T0 + timedelta(hours=since_h),
        until=None if until_h is None else T0 + timedelta(hours=until_h),
    )
    plan = plan_sync(jobs, recorded={}, whole=set(), window=window)
    assert [p.job.job_id for p in plan.to_export] == expected
    assert plan.outside_window == 4 - len(expected)
    assert plan.listed == 4


def test_a_job_without_created_at_is_only_in_an_open_window() -> None:
    job = ListedJob.of("n", DONE)
    assert [
        p.job.job_id
        for p in plan_sync([job], recorded={}, whole=set(), window=TimeWindow()).to_export
    ] == ["n"]
    closed = TimeWindow(since=T0)
    assert plan_sync([job], recorded={}, whole=set(), window=closed).to_export == ()


def test_an_unusable_entry_is_neither_exported_nor_skipped() -> None:
    bad = ListedJob(job_id="(page 1 entry 0)", status=None, created_at=None, problem="no id")
    good = ListedJob.of("j1", {"status": "completed"})
    plan = plan_sync([bad, good], recorded={}, whole=set(), window=TimeWindow())
    assert plan.unusable == (bad,) and plan.skipped == 0 and not bad.has_id
    assert [planned.job.job_id for planned in plan.to_export] == ["j1"]


def test_the_listing_is_read_once_as_it_comes_and_only_ids_of_unchanged_jobs_are_kept() -> None:
    jobs = [listed(f"u{h}", hours=h) for h in range(5)] + [listed("new", hours=9)]
    taken: list[str] = []

    def listing() -> Iterator[ListedJob]:
        for job in jobs:
            taken.append(job.job_id)
            yield job

    markers = {job.job_id: {job.token} for job in jobs[:5]}
    plan = plan_sync(listing(), recorded=markers, whole=set(markers), window=TimeWindow())
    assert taken == [job.job_id for job in jobs]  # one pass
    assert plan.unchanged == ("u0", "u1", "u2", "u3", "u4")
    assert all(isinstance(job_id, str) for job_id in plan.unchanged)
    assert [p.job for p in plan.to_export] == [jobs[-1]] and plan.newest == jobs[-1]
    assert (plan.listed, plan.skipped) == (6, 5)


def test_the_newest_job_is_the_newest_listed_in_the_window_finished_or_not() -> None:
    jobs = [listed("a", hours=1), listed("b", hours=3, status="processing"), listed("c", hours=9)]
    plan = plan_sync(
        jobs, recorded={}, whole=set(), window=TimeWindow(until=T0 + timedelta(hours=5))
    )
    assert plan.newest == jobs[1] and plan.not_finished == (jobs[1],)
    assert plan.outside_window == 1
