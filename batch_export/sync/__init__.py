"""Warehouse loads: every finished job of an account, into a hive-partitioned dataset.

:func:`sync` lists the account's jobs (``GET /v1/batch/jobs``, every page), keeps the finished
ones that the destination does not hold yet, or holds from before the job changed, and exports
each into ``DEST/items/date=YYYY-MM-DD/<job_id>.parquet`` with its row in ``DEST/jobs/``. It can
be killed at any moment and rerun: every job ends up in the dataset exactly once, and readers
who follow the jobs table never see half a job (see :mod:`batch_export.sync.run`).

The modules, in the order data flows: :mod:`~batch_export.sync.listing` (the account's jobs),
:mod:`~batch_export.sync.state` and :mod:`~batch_export.sync.plan` (what to export),
:mod:`~batch_export.sync.run` (the loop), :mod:`~batch_export.sync.destination` (fsspec, files
that appear whole), :mod:`~batch_export.sync.layout` (paths, jobs schema, versions) and
:mod:`~batch_export.sync.report` (events and run summary).

Example:

    >>> from batch_export.sync import sync, EventLog
    >>> report = sync("s3://bucket/scraper", since="2026-05-01", jobs=4,
    ...               on_event=EventLog(log_format="json"))  # doctest: +SKIP
    >>> report.raise_for_failures()  # doctest: +SKIP
"""

from __future__ import annotations

from batch_export.sync.destination import Destination
from batch_export.sync.layout import JOBS_SCHEMA, LAYOUT_VERSION, Marker
from batch_export.sync.listing import ListedJob, TimeWindow, iter_account_jobs, parse_when
from batch_export.sync.plan import Plan, PlannedJob, plan_sync
from batch_export.sync.report import EventLog, SyncReport
from batch_export.sync.run import sync

__all__ = [
    "JOBS_SCHEMA",
    "LAYOUT_VERSION",
    "Destination",
    "EventLog",
    "ListedJob",
    "Marker",
    "Plan",
    "PlannedJob",
    "SyncReport",
    "TimeWindow",
    "iter_account_jobs",
    "parse_when",
    "plan_sync",
    "sync",
]
