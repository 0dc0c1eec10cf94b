"""Which jobs a sync exports, and why; which it skips, and why. A pure function.

A listed job is exported when it is finished (completed, failed or cancelled), created in the
time window, and the destination does not hold it as it is now:

- ``new``: no marker (never exported, or a sync was killed before the marker was written);
- ``changed``: the job's status, counters or ``completed_at`` differ from those recorded in
  its marker's token, or it was exported under another item schema or layout version;
- ``incomplete``: its items file or its jobs row is gone (removed by hand).

Jobs are taken oldest first, so that ``--limit`` catches up in order. A listed entry that
cannot be exported at all (see :attr:`ListedJob.problem`) is ``unusable``: the sync reports it
as failed, and exports the others. A job listed outside the window asked for (a listing that
ignores its filters) is counted, never exported.

The listing is consumed as it comes: of an unchanged job only its id is kept, so a large
account costs the plan a few dozen bytes a job (the jobs to export are kept whole).

Example:

    >>> from batch_export.sync.listing import ListedJob, TimeWindow
    >>> job = ListedJob.of("j1", {"status": "completed"})
    >>> plan = plan_sync([job], recorded={}, whole=set(), window=TimeWindow())
    >>> [(p.job.job_id, p.reason) for p in plan.to_export]
    [('j1', 'new')]
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from batch_export.sync.listing import ListedJob, TimeWindow

__all__ = ["Plan", "PlannedJob", "export_reason", "plan_sync"]

_LAST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedJob:
    """A job to export, and why."""

    job: ListedJob
    reason: str


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one sync will do.

    ``newest`` is the newest job listed in the window (with a ``created_at``): where the next
    sync's listing may start (see :mod:`batch_export.sync.watermark`).
    """

    listed: int
    outside_window: int
    to_export: tuple[PlannedJob, ...]
    unchanged: tuple[str, ...] = ()  # job ids
    not_finished: tuple[ListedJob, ...] = ()  # oldest first
    over_limit: tuple[ListedJob, ...] = ()  # oldest first
    unusable: tuple[ListedJob, ...] = ()  # listed with a `problem`: each fails alone
    newest: ListedJob | None = None

    @property
    def skipped(self) -> int:
        """How many listed jobs this sync leaves alone (unchanged, not finished, over limit)."""
        return len(self.unchanged) + len(self.not_finished) + len(self.over_limit)

    def iter_skipped(self) -> Iterator[tuple[str, str]]:
        """``(job_id, reason)`` of each skipped job: unchanged, not finished, over the limit."""
        yield from ((job_id, "unchanged") for job_id in self.unchanged)
        yield from ((job.job_id, "not_finished") for job in self.not_finished)
        yield from ((job.job_id, "over_limit") for job in self.over_limit)

    def skipped_counts(self) -> dict[str, int]:
        """The skipped jobs counted by reason (reasons with none left out)."""
        counts = {
            "unchanged": len(self.unchanged),
            "not_finished": len(self.not_finished),
            "over_limit": len(self.over_limit),
        }
        return {reason: count for reason, count in counts.items() if count}


def export_reason(job: ListedJob, tokens: Collection[str], *, whole: bool) -> str | None:
    """Why a finished job must be exported, or None when the destination holds it as it is.

    ``tokens`` are those of the job's markers (one, or none; more only if edited by hand).

    >>> job = ListedJob.of("j1", {"status": "failed", "completed_urls": 1})
    >>> export_reason(job, (), whole=False), export_reason(job, {job.token}, whole=True)
    ('new', None)
    """
    if not tokens:
        return "new"
    if set(tokens) != {job.token}:
        return "changed"
    if not whole:
        return "incomplete"
    return None


def plan_sync(
    listed: Iterable[ListedJob],
    *,
    recorded: Mapping[str, Collection[str]],
    whole: Collection[str],
    window: TimeWindow,
    limit: int | None = None,
) -> Plan:
    """Decide what to export, reading ``listed`` once, as it comes.

    ``recorded`` maps job ids to their markers' tokens; ``whole`` holds the ids of jobs whose
    items file and jobs row are both there.
    """
    count = outside = 0
    unchanged: list[str] = []
    not_finished: list[ListedJob] = []
    unusable: list[ListedJob] = []
    candidates: list[PlannedJob] = []
    newest: ListedJob | None = None
    for job in listed:
        count += 1
        if not window.contains(job.created_at):
            outside += 1
            continue
        if job.created_at is not None and (newest is None or _age(job) > _age(newest)):
            newest = job
        if job.problem is not None:
            unusable.append(job)
        elif not job.is_terminal:
            not_finished.append(job)
        else:
            reason = export_reason(job, recorded.get(job.job_id, ()), whole=job.job_id in whole)
            if reason is None:
                unchanged.append(job.job_id)
            else:
                candidates.append(PlannedJob(job=job, reason=reason))
    candidates.sort(key=lambda planned: _age(planned.job))
    cut = len(candidates) if limit is None else limit
    return Plan(
        listed=count,
        outside_window=outside,
        to_export=tuple(candidates[:cut]),
        unchanged=tuple(unchanged),
        not_finished=tuple(sorted(not_finished, key=_age)),
        over_limit=tuple(planned.job for planned in candidates[cut:]),
        unusable=tuple(unusable),
        newest=newest,
    )


def _age(job: ListedJob) -> tuple[datetime, str]:
    return (job.created_at or _LAST, job.job_id)
