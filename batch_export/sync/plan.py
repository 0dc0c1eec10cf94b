"""Which jobs a sync exports, and why; which it skips, and why. A pure function.

A listed job is exported when it is finished (completed, failed or cancelled), created in the
time window, and the destination does not hold it as it is now:

- ``new``: no marker (never exported, or a sync was killed before the marker was written);
- ``changed``: the job's status, counters or ``completed_at`` differ from those recorded in
  its marker's token, or it was exported under another item schema or layout version;
- ``incomplete``: its items file or its jobs row is gone (removed by hand).

Jobs are taken oldest first, so that ``--limit`` catches up in order. A listed entry that
cannot be exported at all (see :attr:`ListedJob.problem`) is ``unusable``: the sync reports it
as failed, and exports the others.

Example:

    >>> from batch_export.sync.listing import ListedJob, TimeWindow
    >>> job = ListedJob(job_id="j1", status="completed", created_at=None, fingerprint={})
    >>> plan = plan_sync([job], recorded={}, whole=set(), window=TimeWindow())
    >>> [(p.job.job_id, p.reason) for p in plan.to_export]
    [('j1', 'new')]
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from batch_export.sync.listing import ListedJob, TimeWindow

__all__ = ["Plan", "PlannedJob", "export_reason", "plan_sync"]

_LAST = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, kw_only=True)
class PlannedJob:
    """A job to export, and why."""

    job: ListedJob
    reason: str


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What one sync will do."""

    listed: int
    outside_window: int
    to_export: tuple[PlannedJob, ...]
    skipped: tuple[tuple[str, str], ...]  # (job_id, reason): unchanged, not_finished, over_limit
    unusable: tuple[ListedJob, ...] = ()  # listed with a `problem`: each fails alone


def export_reason(job: ListedJob, tokens: Collection[str], *, whole: bool) -> str | None:
    """Why a finished job must be exported, or None when the destination holds it as it is.

    ``tokens`` are those of the job's markers (one, or none; more only if edited by hand).

    >>> job = ListedJob(job_id="j1", status="failed", created_at=None, fingerprint={"a": 1})
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
    listed: Sequence[ListedJob],
    *,
    recorded: Mapping[str, Collection[str]],
    whole: Collection[str],
    window: TimeWindow,
    limit: int | None = None,
) -> Plan:
    """Decide what to export.

    ``recorded`` maps job ids to their markers' tokens; ``whole`` holds the ids of jobs whose
    items file and jobs row are both there.
    """
    in_window = [job for job in listed if window.contains(job.created_at)]
    skipped: list[tuple[str, str]] = []
    candidates: list[PlannedJob] = []
    unusable = tuple(job for job in in_window if job.problem is not None)
    for job in sorted(in_window, key=_age):
        if job.problem is not None:
            continue
        if not job.is_terminal:
            skipped.append((job.job_id, "not_finished"))
            continue
        tokens = recorded.get(job.job_id, ())
        reason = export_reason(job, tokens, whole=job.job_id in whole)
        if reason is None:
            skipped.append((job.job_id, "unchanged"))
        else:
            candidates.append(PlannedJob(job=job, reason=reason))
    cut = len(candidates) if limit is None else limit
    skipped.extend((planned.job.job_id, "over_limit") for planned in candidates[cut:])
    return Plan(
        listed=len(listed),
        outside_window=len(listed) - len(in_window),
        to_export=tuple(candidates[:cut]),
        skipped=tuple(skipped),
        unusable=unusable,
    )


def _age(job: ListedJob) -> tuple[datetime, str]:
    return (job.created_at or _LAST, job.job_id)
