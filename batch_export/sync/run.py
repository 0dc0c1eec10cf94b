"""The sync loop: list the account's jobs, plan, load each job into the store, report.

Jobs are loaded ``jobs`` at a time (by default the connection's ``concurrency``), each
in a thread of its own, through one shared :class:`~batch_export.fetch.client.ApiClient`: the
requests in flight across all jobs stay within ``concurrency``, a 429 lowers that for every
job, and while one job's files are written or committed the others' pages keep coming. A job
that the listing says is finished is read without a status probe (its page 1 is its status),
so a job of up to 50 items costs one request.

What a load does, and what a reader sees at each moment, is the store's contract (see
:mod:`batch_export.sync.store`; for the Parquet dataset, :mod:`batch_export.sync.dataset`).
One failing job (an answer for another job, a date that cannot be placed, a store that
refuses it) is reported and the others go on.

Example (against the bundled emulator):

    >>> import tempfile
    >>> from batch_export.connection import Connection
    >>> from batch_export.testing import Emulator, generate_account
    >>> with Emulator(jobs=generate_account(jobs=5, processing=1), api_key="k") as emu:
    ...     connection = Connection(base_url=emu.base_url, api_key="k")
    ...     report = sync(tempfile.mkdtemp(), connection=connection)
    >>> len(report.exported), report.exit_code
    (4, 0)
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from batch_export.connection import Connection
from batch_export.errors import BatchExportError, InvalidInputError, ResponseShapeError
from batch_export.fetch.client import ApiClient
from batch_export.job import JobStatus
from batch_export.pipeline import load_arrow_side, open_job
from batch_export.sync.dataset import DatasetStore
from batch_export.sync.destination import Destination
from batch_export.sync.layout import parse_timestamp
from batch_export.sync.listing import ListedJob, TimeWindow, iter_account_jobs, parse_when
from batch_export.sync.plan import Plan, PlannedJob, plan_sync
from batch_export.sync.report import OnEvent, SyncReport, utc_now
from batch_export.sync.store import JobLoad, Store, open_store
from batch_export.version import __version__

__all__ = ["MAX_JOBS", "default_jobs", "sync"]

MAX_JOBS = 32
_EXIT_UNEXPECTED = 1
_EXIT_OUTPUT = 8
_REASON_CHARS = 500


def default_jobs(connection: Connection) -> int:
    """Jobs loaded at once by default: one per connection. Most jobs of an account are a
    page or two; more threads than that only contend for the interpreter (measured: 16 and
    32 jobs at once were slower than 8 on 2 cores).

    >>> default_jobs(Connection(concurrency=8))
    8
    """
    return max(1, min(connection.concurrency, MAX_JOBS))


@dataclass(frozen=True, kw_only=True)
class _Run:
    """What every job's load needs, shared by the worker threads."""

    client: ApiClient
    connection: Connection
    store: Store
    emit: OnEvent


def sync(
    dest: str | os.PathLike[str] | Destination | Store,
    *,
    connection: Connection | None = None,
    storage_options: Mapping[str, Any] | None = None,
    table_format: str = "parquet",
    items_table: str = "items",
    jobs_table: str = "jobs",
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    jobs: int | None = None,
    on_event: OnEvent | None = None,
    client: ApiClient | None = None,
) -> SyncReport:
    """Bring ``dest`` up to date with every finished job of the account; return the report.

    ``dest`` is a local path, an fsspec URL (``s3://bucket/prefix``), a database URL
    (``duckdb:///w.duckdb``, ``postgresql://...``) or a ready store (see
    :func:`~batch_export.sync.store.open_store`, which ``table_format``, ``storage_options``
    and the table names go to). ``since`` (inclusive) and ``until`` (exclusive) bound the
    jobs' ``created_at``; ``limit`` caps the jobs exported, oldest first; ``jobs`` loads that
    many at once (default :func:`default_jobs`). Failed jobs are in ``report.failed``
    (``report.raise_for_failures()`` makes them an error); a failure to list the jobs or to
    use ``dest`` raises at once.
    """
    if (jobs is not None and jobs < 1) or (limit is not None and limit < 0):
        raise InvalidInputError("--jobs must be at least 1 and --limit at least 0.")
    window = TimeWindow(since=_when(since, "--since"), until=_when(until, "--until"))
    connection = connection or Connection()
    emit = on_event or (lambda name, fields: None)
    owned_store = isinstance(dest, str | os.PathLike | Destination)
    store = _store(
        dest,
        table_format=table_format,
        storage_options=storage_options,
        tables=(items_table, jobs_table),
    )
    report = SyncReport(dest=store.url, dry_run=dry_run)
    started = time.monotonic()
    owned_client = client is None
    client = client or connection.client()
    # While the account's jobs are listed.
    load_arrow_side()
    try:
        plan = _plan(client, store, window=window, limit=limit, connection=connection)
        _announce(plan, report, store, emit, dry_run=dry_run)
        if not dry_run:
            report.removed_orphans = store.prepare()
            run = _Run(client=client, connection=connection, store=store, emit=emit)
            _report_unusable(run, plan.unusable, report)
            _export_all(run, plan, report, workers=jobs or default_jobs(connection))
    finally:
        if owned_client:
            client.close()
        if owned_store:
            store.close()
    report.seconds = round(time.monotonic() - started, 3)
    report.finished_at = utc_now().isoformat()
    emit("run_finished", _finished_fields(report))
    return report


def _store(
    dest: str | os.PathLike[str] | Destination | Store,
    *,
    table_format: str,
    storage_options: Mapping[str, Any] | None,
    tables: tuple[str, str],
) -> Store:
    if isinstance(dest, Destination):
        return DatasetStore(dest)
    if isinstance(dest, str | os.PathLike):
        return open_store(
            dest,
            table_format=table_format,
            storage_options=storage_options,
            items_table=tables[0],
            jobs_table=tables[1],
        )
    return dest


def _plan(
    client: ApiClient,
    store: Store,
    *,
    window: TimeWindow,
    limit: int | None,
    connection: Connection,
) -> Plan:
    """List the account's jobs and what the store holds of them, and decide."""
    listed = list(iter_account_jobs(client, concurrency=connection.concurrency))
    state = store.scan()
    return plan_sync(listed, recorded=state.recorded, whole=state.whole, window=window, limit=limit)


def _when(value: datetime | str | None, option: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_when(value, option=option)


def _announce(
    plan: Plan, report: SyncReport, store: Store, emit: OnEvent, *, dry_run: bool
) -> None:
    report.listed, report.outside_window = plan.listed, plan.outside_window
    report.count_skipped([reason for _, reason in plan.skipped])
    emit(
        "run_started",
        {
            "dest": store.url,
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


def _report_unusable(run: _Run, unusable: tuple[ListedJob, ...], report: SyncReport) -> None:
    """Listed entries that cannot be exported at all fail alone, before any job is loaded."""
    for job in unusable:
        fields = {
            "job_id": job.job_id,
            "reason": job.problem,
            "error": ResponseShapeError.__name__,
            "exit_code": ResponseShapeError.exit_code,
        }
        run.emit("job_failed", fields)
        report.failed.append(fields)


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
    """Load one job; a failure becomes a ``job_failed`` outcome, never stops the others."""
    try:
        return _export_job(run, planned)
    except BatchExportError as error:
        failure = {"reason": error.message, "error": type(error).__name__}
        exit_code = error.exit_code
    except OSError as error:  # a store's own file or socket error: the destination's fault
        reason = error.strerror or str(error)
        failure = {
            "reason": f"Cannot load job {planned.job.job_id} into {run.store.url}: {reason}. "
            "Check free space and permissions there, then rerun.",
            "error": "OutputError",
        }
        exit_code = _EXIT_OUTPUT
    except Exception as error:  # one odd job must not stop an unattended load of the rest
        failure = {"reason": f"unexpected {type(error).__name__}: {error}", "error": "bug"}
        exit_code = _EXIT_UNEXPECTED
    reason = " ".join(run.client.redact(failure["reason"]).split())
    failure["reason"] = reason if len(reason) <= _REASON_CHARS else reason[:497] + "..."
    fields = {"job_id": planned.job.job_id, **failure, "exit_code": exit_code}
    run.emit("job_failed", fields)
    return fields


def _export_job(run: _Run, planned: PlannedJob) -> dict[str, Any]:
    job_id = planned.job.job_id
    started = time.monotonic()
    run.emit("job_started", _job_fields(planned))
    with open_job(
        job_id, connection=run.connection, client=run.client, assume_finished=True, count=False
    ) as stream:
        load = JobLoad(
            job=stream.job,
            token=planned.job.token,
            fingerprint=planned.job.fingerprint,
            created_at=_placed(stream.job, planned.job),
            exported_at=utc_now(),
            tool_version=__version__,
        )
        rows = run.store.load(load, stream)
    seconds = round(time.monotonic() - started, 3)
    fields: dict[str, Any] = {
        "job_id": job_id,
        "reason": planned.reason,
        "rows": rows,
        "seconds": seconds,
    }
    if isinstance(run.store, DatasetStore):
        fields["items_path"] = run.store.items_path(load)
    hidden = stream.hidden + planned.job.hidden
    if hidden:  # runs of the API key that the answers held, written <hidden>
        fields["api_key_hidden"] = hidden
    run.emit("job_exported", fields)
    return fields


def _placed(job: JobStatus, listed: ListedJob) -> datetime:
    """When the job was created, which places it in its date partition.

    The job's own answer says; the listing's word serves when the answer has none. Both
    timestamps are checked here, before the store changes anything.
    """
    parse_timestamp(job.completed_at, name="completed_at", job_id=job.job_id)
    created = parse_timestamp(job.created_at, name="created_at", job_id=job.job_id)
    created = created or listed.created_at
    if created is None:
        raise ResponseShapeError(
            f"Job {job.job_id} has no `created_at`, so its date partition is unknown.",
            job_id=job.job_id,
        )
    return created


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
