"""The sync loop: list the account's jobs, plan, export each job, report.

Each job is exported in this order, each step one atomic file operation::

    1. remove the job's marker, then its jobs row      (readers stop trusting the old export)
    2. remove its items files at any other path         (a created_at that moved day)
    3. write items/date=D/<job_id>.parquet              (whole, or not at all)
    4. write jobs/date=D/<job_id>.parquet               (the job is now in the dataset)
    5. write _markers/<job_id>.<token>.json             (the sync's own record, last)

So, at every moment, a jobs row describes exactly the items file beside it, and an items file
is always one whole export of its job. **Readers trust the jobs table**: a job is in the
dataset when its row is in ``jobs/``, and its items are the items file of the same day and id.
A kill between steps 3 and 4 leaves an items file without a row (an *orphan*, which the next
sync removes before anything else); a kill between 4 and 5 leaves a job that is whole but that
the next sync exports again. A sync assumes it is the only writer of its destination.

Example (against the bundled emulator):

    >>> import tempfile
    >>> from batch_export.export import Connection
    >>> from batch_export.testing import Emulator, generate_account
    >>> with Emulator(jobs=generate_account(jobs=5, processing=1), api_key="k") as emu:
    ...     connection = Connection(base_url=emu.base_url, api_key="k")
    ...     report = sync(tempfile.mkdtemp(), connection=connection)
    >>> len(report.exported), report.exit_code
    (4, 0)
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

import pyarrow.parquet as pq

from batch_export import __version__
from batch_export.client import ApiClient, check_job_id
from batch_export.errors import (
    BatchExportError,
    InvalidInputError,
    JobNotFinishedError,
    ResponseShapeError,
)
from batch_export.export import Connection, iter_batches
from batch_export.job import JobStatus
from batch_export.sync.destination import Destination
from batch_export.sync.layout import (
    Marker,
    items_path,
    job_row,
    jobs_path,
    marker_path,
    parse_timestamp,
    partition_date,
)
from batch_export.sync.listing import TimeWindow, iter_account_jobs, parse_when
from batch_export.sync.plan import Plan, PlannedJob, plan_sync
from batch_export.sync.report import OnEvent, SyncReport, utc_now
from batch_export.sync.state import DatasetState
from batch_export.writers import open_writer

__all__ = ["sync"]

_EXIT_UNEXPECTED = 1


@dataclass(frozen=True, kw_only=True)
class _Run:
    """What every job's export needs, shared by the worker threads."""

    client: ApiClient
    connection: Connection
    dest: Destination
    state: DatasetState
    emit: OnEvent


def sync(
    dest: str | os.PathLike[str] | Destination,
    *,
    connection: Connection | None = None,
    storage_options: Mapping[str, Any] | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    jobs: int = 1,
    on_event: OnEvent | None = None,
    client: ApiClient | None = None,
) -> SyncReport:
    """Bring ``dest`` up to date with every finished job of the account; return the report.

    ``dest`` is a local path or an fsspec URL (``s3://bucket/prefix``); ``storage_options``
    go to its file system. ``since`` (inclusive) and ``until`` (exclusive) bound the jobs'
    ``created_at``; ``limit`` caps the jobs exported, oldest first; ``jobs`` exports that
    many at once. Failed jobs are in ``report.failed`` (``report.raise_for_failures()`` makes
    them an error); a failure to list the jobs or to use ``dest`` raises at once.
    """
    if jobs < 1 or (limit is not None and limit < 0):
        raise InvalidInputError("--jobs must be at least 1 and --limit at least 0.")
    window = TimeWindow(since=_when(since, "--since"), until=_when(until, "--until"))
    destination = (
        dest
        if isinstance(dest, Destination)
        else Destination(os.fspath(dest), storage_options=storage_options)
    )
    connection = connection or Connection()
    emit = on_event or (lambda name, fields: None)
    report = SyncReport(dest=destination.url, dry_run=dry_run)
    started = time.monotonic()
    owned = client is None
    client = client or connection.client()
    try:
        plan, state = _plan(client, destination, window=window, limit=limit)
        _announce(plan, report, destination, emit, dry_run=dry_run)
        if not dry_run:
            run = _Run(
                client=client, connection=connection, dest=destination, state=state, emit=emit
            )
            _prepare(run, report)
            _export_all(run, plan, report, workers=jobs)
    finally:
        if owned:
            client.close()
    report.seconds = round(time.monotonic() - started, 3)
    report.finished_at = utc_now().isoformat()
    emit("run_finished", _finished_fields(report))
    return report


def _plan(
    client: ApiClient, dest: Destination, *, window: TimeWindow, limit: int | None
) -> tuple[Plan, DatasetState]:
    """List the account's jobs and what the destination holds of them, and decide."""
    listed = list(iter_account_jobs(client))
    state = DatasetState.scan(dest)
    plan = plan_sync(
        listed, recorded=state.tokens(), whole=state.whole(), window=window, limit=limit
    )
    return plan, state


def _when(value: datetime | str | None, option: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_when(value, option=option)


def _announce(
    plan: Plan, report: SyncReport, dest: Destination, emit: OnEvent, *, dry_run: bool
) -> None:
    report.listed, report.outside_window = plan.listed, plan.outside_window
    report.count_skipped([reason for _, reason in plan.skipped])
    emit(
        "run_started",
        {
            "dest": dest.url,
            "listed": plan.listed,
            "outside_window": plan.outside_window,
            "to_export": len(plan.to_export),
            "skipped": len(plan.skipped),
            "dry_run": dry_run,
        },
    )
    for job_id, reason in plan.skipped:
        emit("job_skipped", {"job_id": job_id, "reason": reason})
    if dry_run:
        for planned in plan.to_export:
            fields = _job_fields(planned)
            report.planned.append(fields)
            emit("job_planned", fields)


def _prepare(run: _Run, report: SyncReport) -> None:
    """Before any export: the layout file, and nothing half-written left from a killed sync."""
    run.state.write_layout(run.dest)
    run.dest.clear_staging()
    for path in run.state.orphans():
        run.dest.delete(path)
        run.state.discard(path)
        report.removed_orphans += 1


def _export_all(run: _Run, plan: Plan, report: SyncReport, *, workers: int) -> None:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sync")
    try:
        futures: dict[Future[dict[str, Any]], PlannedJob] = {
            pool.submit(_export_guarded, run, planned): planned for planned in plan.to_export
        }
        for future in as_completed(futures):
            outcome = future.result()
            (report.failed if "exit_code" in outcome else report.exported).append(outcome)
    finally:
        # On Ctrl-C, jobs not started yet are dropped; the running ones finish first.
        pool.shutdown(wait=True, cancel_futures=True)
    report.exported.sort(key=lambda job: str(job["job_id"]))
    report.failed.sort(key=lambda job: str(job["job_id"]))


def _export_guarded(run: _Run, planned: PlannedJob) -> dict[str, Any]:
    """Export one job; a failure becomes a ``job_failed`` outcome, never stops the others."""
    try:
        return _export_job(run, planned)
    except BatchExportError as error:
        failure = {"reason": run.client.redact(error.message), "error": type(error).__name__}
        exit_code = error.exit_code
    except Exception as error:  # one odd job must not stop an unattended load of the rest
        reason = run.client.redact(f"unexpected {type(error).__name__}: {error}")
        failure = {"reason": reason, "error": "bug"}
        exit_code = _EXIT_UNEXPECTED
    fields = {"job_id": planned.job.job_id, **failure, "exit_code": exit_code}
    run.emit("job_failed", fields)
    return fields


def _export_job(run: _Run, planned: PlannedJob) -> dict[str, Any]:
    job_id = check_job_id(planned.job.job_id)
    started = time.monotonic()
    run.emit("job_started", _job_fields(planned))
    job = _finished_status(run.client, job_id)
    # Both timestamps are checked before any file changes: the jobs row needs them.
    parse_timestamp(job.completed_at, name="completed_at", job_id=job_id)
    created = parse_timestamp(job.created_at, name="created_at", job_id=job_id)
    created = created or planned.job.created_at
    if created is None:
        raise ResponseShapeError(
            f"Job {job_id} has no `created_at`, so its date partition is unknown.", job_id=job_id
        )
    day = partition_date(created)
    items, row = items_path(job_id, day), jobs_path(job_id, day)
    _unpublish(run, job_id, keep=items)
    rows = run.dest.publish(items, lambda sink: _write_items(run, job, sink))
    run.state.add(items)
    exported_at = utc_now()
    table = job_row(job, rows=rows, exported_at=exported_at, tool_version=__version__)
    run.dest.publish(row, lambda sink: pq.write_table(table, sink))
    run.state.add(row)
    marker = Marker(
        job_id=job_id,
        fingerprint=planned.job.fingerprint,
        token=planned.job.token,
        rows=rows,
        items_path=items,
        jobs_path=row,
        exported_at=exported_at.isoformat(),
        tool_version=__version__,
    )
    run.dest.publish_bytes(marker_path(job_id, marker.token), marker.to_json())
    seconds = round(time.monotonic() - started, 3)
    fields = {"job_id": job_id, "reason": planned.reason, "rows": rows, "seconds": seconds}
    fields["items_path"] = items
    run.emit("job_exported", fields)
    return fields


def _finished_status(client: ApiClient, job_id: str) -> JobStatus:
    job = client.fetch_page(job_id, page=1, page_size=1).job
    if not job.is_terminal:
        raise JobNotFinishedError(
            f"Job {job_id} was listed as finished, but its status is {job.status}: the next "
            "sync exports it once it is finished.",
            job_id=job_id,
            status=job.status,
        )
    return job


def _unpublish(run: _Run, job_id: str, *, keep: str) -> None:
    """Steps 1 and 2: take the job out of what readers trust, before its items change."""
    items, rows, markers = run.state.files_of(job_id)
    for path in [*sorted(markers), *sorted(rows), *sorted(items - {keep})]:
        run.dest.delete(path)
        run.state.discard(path)


def _write_items(run: _Run, job: JobStatus, sink: BinaryIO) -> int:
    writer = open_writer("parquet", sink)
    rows = 0
    page_size = run.connection.page_size
    # Most jobs of an account are a page or two: no point starting threads for pages not there.
    pages = math.ceil((job.expected_items or 0) / page_size)
    concurrency = max(1, min(run.connection.concurrency, pages))
    try:
        for batch in iter_batches(run.client, job, page_size=page_size, concurrency=concurrency):
            writer.write(batch)
            rows += batch.num_rows
    finally:
        # Closed on failure too (the file is thrown away), or pyarrow's writer would try to
        # finish it after the file is gone.
        writer.close()
    return rows


def _job_fields(planned: PlannedJob) -> dict[str, Any]:
    created = planned.job.created_at
    return {
        "job_id": planned.job.job_id,
        "reason": planned.reason,
        "created_at": created.isoformat() if created else None,
    }


def _finished_fields(report: SyncReport) -> dict[str, Any]:
    return {
        "exported": len(report.exported),
        "failed": len(report.failed),
        "skipped": sum(report.skipped.values()),
        "rows": report.rows,
        "seconds": report.seconds,
        "exit_code": report.exit_code,
    }
