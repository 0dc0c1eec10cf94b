"""The sync loop: list the account's jobs, plan, load each job into the store, report.

The listing starts from the destination's watermark when it has one, and the sync leaves a
new one at its end (:mod:`batch_export.sync.incremental`): a scheduled sync of an account
with nothing new costs a listing request or two, whatever the account's history.

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

import functools
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from batch_export.connection import Connection
from batch_export.errors import (
    BatchExportError,
    InvalidInputError,
    OutputError,
    ResponseShapeError,
)
from batch_export.fetch.client import ApiClient
from batch_export.job import JobStatus
from batch_export.pipeline import load_arrow_side, open_job
from batch_export.sync.incremental import Listing, ListingOptions, list_account, next_watermark
from batch_export.sync.layout import parse_timestamp
from batch_export.sync.listing import MAX_LISTED_JOBS, ListedJob, TimeWindow, parse_when
from batch_export.sync.plan import Plan, PlannedJob
from batch_export.sync.report import OnEvent, SyncReport, utc_now
from batch_export.sync.store import JobLoad, Store, StoreState, open_store
from batch_export.sync.stores.native import native_events, native_reason
from batch_export.sync.watermark import WATERMARK_MARGIN
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
    dest: str | os.PathLike[str] | Store,
    *,
    connection: Connection | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | None = None,
    dry_run: bool = False,
    jobs: int | None = None,
    on_event: OnEvent | None = None,
    client: ApiClient | None = None,
    full: bool = False,
    max_listed: int = MAX_LISTED_JOBS,
    margin: timedelta = WATERMARK_MARGIN,
) -> SyncReport:
    """Bring ``dest`` up to date with every finished job of the account; return the report.

    ``dest`` is a local path, an fsspec URL (``s3://bucket/prefix``) or a database URL
    (``duckdb:///w.duckdb``, ``postgresql://...``), opened with
    :func:`~batch_export.sync.store.open_store`'s defaults and closed at the end; or a store
    that the caller opened with other options and closes (``with open_store(dest,
    table_format="delta") as store: sync(store)``). ``since`` (inclusive) and ``until``
    (exclusive) bound the jobs' ``created_at``; ``limit`` caps the jobs exported, oldest
    first; ``jobs`` loads that many at once (default :func:`default_jobs`). Failed jobs are
    in ``report.failed`` (``report.raise_for_failures()`` makes them an error); a failure to
    list the jobs or to use ``dest`` raises at once.

    The listing starts from the destination's watermark, less ``margin``, unless ``full``
    (see :mod:`batch_export.sync.watermark`); more than ``max_listed`` listed jobs is an
    error (exit 7) rather than a plan that outgrows memory. What native libraries print on
    standard error meanwhile comes to ``on_event`` as ``native_output`` events (none is caught
    without ``on_event``).
    """
    if (jobs is not None and jobs < 1) or (limit is not None and limit < 0):
        raise InvalidInputError("--jobs must be at least 1 and --limit at least 0.")
    if max_listed < 1:
        raise InvalidInputError(f"--max-listed must be at least 1, got {max_listed}.")
    window = TimeWindow(since=_when(since, "--since"), until=_when(until, "--until"))
    connection = connection or Connection()
    options = ListingOptions(
        window=window,
        limit=limit,
        full=full,
        margin=margin,
        max_listed=max_listed,
        concurrency=connection.concurrency,
    )
    emit = on_event or (lambda name, fields: None)
    # What native libraries print meanwhile (a Rust panic, an Arrow C++ line, libpq) comes to
    # on_event as native_output events, for the command and a notebook alike.
    with native_events(on_event):
        # A destination is opened here, and closed at the end; a store given stays open.
        owned_store = isinstance(dest, str | os.PathLike)
        store = open_store(dest) if isinstance(dest, str | os.PathLike) else dest
        report = SyncReport(dest=store.url, dry_run=dry_run)
        started = time.monotonic()
        owned_client = client is None
        client = client or connection.client()
        # While the account's jobs are listed.
        load_arrow_side()
        try:
            run = _Run(client=client, connection=connection, store=store, emit=emit)
            _run(run, options, report, dry_run=dry_run, workers=jobs or default_jobs(connection))
        finally:
            if owned_client:
                client.close()
            if owned_store:
                store.close()
    report.seconds = round(time.monotonic() - started, 3)
    report.finished_at = utc_now().isoformat()
    emit("run_finished", _finished_fields(report))
    return report


def _run(
    run: _Run, options: ListingOptions, report: SyncReport, *, dry_run: bool, workers: int
) -> None:
    """List and plan (from the store's watermark), then load, then leave a new watermark."""
    state = run.store.scan()
    listing = list_account(run.client, state, options)
    _announce(listing, report, run.store, run.emit, dry_run=dry_run)
    if dry_run:
        return
    report.removed_orphans = run.store.prepare()
    _report_unusable(run, listing, report)
    _export_all(run, listing.plan, report, workers=workers)
    _keep_watermark(run, listing, state, report)


def _when(value: datetime | str | None, option: str) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_when(value, option=option)


def _announce(
    listing: Listing, report: SyncReport, store: Store, emit: OnEvent, *, dry_run: bool
) -> None:
    plan = listing.plan
    report.listed, report.outside_window = plan.listed, plan.outside_window
    report.listing_requests, report.listing = listing.stats.requests, listing.to_summary()
    report.skipped = plan.skipped_counts()
    emit(
        "run_started",
        {
            "dest": store.url,
            "listed": plan.listed,
            "outside_window": plan.outside_window,
            "to_export": len(plan.to_export),
            "skipped": plan.skipped,
            "dry_run": dry_run,
            "listing_requests": listing.stats.requests,
            "listed_since": report.listing["since"],
        },
    )
    for job_id, reason in plan.iter_skipped():
        emit("job_skipped", {"job_id": job_id, "reason": reason})
    if dry_run:
        for planned in plan.to_export:
            fields = _job_fields(planned)
            report.planned.append(fields)
            emit("job_planned", fields)


def _report_unusable(run: _Run, listing: Listing, report: SyncReport) -> None:
    """Listed entries that cannot be exported at all, and waiting jobs that could not be
    read, fail alone, before any job is loaded."""
    failures: list[tuple[str, str | None, type[BatchExportError]]] = [
        (job.job_id, job.problem, ResponseShapeError) for job in listing.plan.unusable
    ]
    failures += [(job_id, error.message, type(error)) for job_id, error in listing.unreadable]
    for job_id, reason, error in failures:
        fields = {
            "job_id": job_id,
            "reason": reason,
            "error": error.__name__,
            "exit_code": error.exit_code,
        }
        run.emit("job_failed", fields)
        report.failed.append(fields)


def _keep_watermark(run: _Run, listing: Listing, state: StoreState, report: SyncReport) -> None:
    """Leave the watermark of this sync in the store, when it is new. A store that refuses
    it costs the next sync a longer listing, never a job: the run goes on."""
    watermark = next_watermark(listing, failed={str(f["job_id"]) for f in report.failed})
    if watermark is None:
        return
    document = watermark.to_document()
    if document != state.watermark:
        try:
            run.store.save_watermark(document)
        except OutputError as error:
            run.emit("watermark_not_saved", {"reason": error.message})
            report.listing["watermark"] = f"not saved: {error.message}"
            return
    report.listing["watermark"] = watermark.newest.isoformat()


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
        reason = native_reason(error)  # a full or read-only disk said as such
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
        # Called once the batches are consumed, by the store and by the event below: the
        # runs of the API key hidden, in the listing's entry, the job's fields and the items.
        counts = functools.cache(
            lambda: {
                **stream.failure_columns(),
                "api_key_hidden": stream.hidden + planned.job.hidden,
            }
        )
        load = JobLoad(
            job=stream.job,
            token=planned.job.token,
            fingerprint=planned.job.fingerprint,
            created_at=_placed(stream.job, planned.job),
            exported_at=utc_now(),
            tool_version=__version__,
            values_changed=lambda: stream.values_changed,
            counts=counts,
        )
        loaded = run.store.load(load, stream)
    seconds = round(time.monotonic() - started, 3)
    fields: dict[str, Any] = {
        "job_id": job_id,
        "reason": planned.reason,
        **loaded.fields(),
        "seconds": seconds,
    }
    hidden = counts()["api_key_hidden"]
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
