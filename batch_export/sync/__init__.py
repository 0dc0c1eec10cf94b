"""Warehouse loads: every finished job of an account, into a dataset, a table or a database.

:func:`sync` lists the account's jobs (``GET /v1/batch/jobs``, every page), keeps the finished
ones that the destination does not hold yet, or holds from before the job changed, and loads
each into a store: by default a hive-partitioned Parquet dataset
(``DEST/items/date=YYYY-MM-DD/<job_id>.parquet`` with its row in ``DEST/jobs/``), or Delta Lake
tables, DuckDB, PostgreSQL (see :func:`open_store`). It can be killed at any moment and rerun:
every job ends up in the destination exactly once, and readers never see half a job. Two syncs
into one destination at once are safe: PostgreSQL and Delta Lake take both, the Parquet dataset
and DuckDB refuse the second in one sentence.

The modules, in the order data flows: :mod:`~batch_export.sync.listing` (the account's jobs),
:mod:`~batch_export.sync.plan` (what to export), :mod:`~batch_export.sync.run` (the loop),
:mod:`~batch_export.sync.store` (the interface, and the choice of store),
:mod:`batch_export.sync.stores` (every store: the Parquet dataset, Delta Lake, DuckDB,
PostgreSQL), :mod:`~batch_export.sync.layout` (the Parquet dataset's paths and jobs schema)
and :mod:`~batch_export.sync.report` (events and run summary).

Example:

    >>> from batch_export.sync import sync, EventLog
    >>> report = sync("s3://bucket/scraper", since="2026-05-01", jobs=4,
    ...               on_event=EventLog(log_format="json"))  # doctest: +SKIP
    >>> report.raise_for_failures()  # doctest: +SKIP
"""

from __future__ import annotations

from batch_export.sync.layout import JOBS_SCHEMA, LAYOUT_VERSION, Marker
from batch_export.sync.listing import ListedJob, TimeWindow, iter_account_jobs, parse_when
from batch_export.sync.plan import Plan, PlannedJob, plan_sync
from batch_export.sync.report import EventLog, SyncReport
from batch_export.sync.run import default_jobs, sync
from batch_export.sync.store import (
    TABLE_FORMATS,
    JobLoad,
    Loaded,
    Store,
    StoreState,
    open_store,
)
from batch_export.sync.stores.dataset import DatasetStore
from batch_export.sync.stores.destination import Destination

__all__ = [
    "JOBS_SCHEMA",
    "LAYOUT_VERSION",
    "TABLE_FORMATS",
    "DatasetStore",
    "Destination",
    "EventLog",
    "JobLoad",
    "ListedJob",
    "Loaded",
    "Marker",
    "Plan",
    "PlannedJob",
    "Store",
    "StoreState",
    "SyncReport",
    "TimeWindow",
    "default_jobs",
    "iter_account_jobs",
    "open_store",
    "parse_when",
    "plan_sync",
    "sync",
]
