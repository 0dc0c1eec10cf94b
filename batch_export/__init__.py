"""batch-export: Geonode Scraper API batch jobs as analysis-ready tables.

Example:

    >>> import batch_export
    >>> batch_export.ITEM_SCHEMA.names[:2]
    ['job_id', 'input_index']
"""

from __future__ import annotations

__version__ = "0.1.0"

from batch_export.client import ApiClient
from batch_export.errors import (
    ApiError,
    AuthenticationError,
    BatchExportError,
    IncompleteResultsError,
    InsecureTransportError,
    InvalidInputError,
    ItemErrorsFound,
    JobNotFinishedError,
    JobNotFoundError,
    OutputError,
    RequestRejectedError,
    ResponseShapeError,
    RetriesExhaustedError,
    SyncIncomplete,
    TransientApiError,
)
from batch_export.export import Connection, export
from batch_export.frame import iter_batches, read_export, read_job, read_jobs, summarize
from batch_export.job import JobStatus
from batch_export.report import render_report, write_report
from batch_export.retry import RetryPolicy
from batch_export.schema import ITEM_SCHEMA, SCHEMA_VERSION
from batch_export.summary import Summary

__all__ = [
    "ITEM_SCHEMA",
    "SCHEMA_VERSION",
    "ApiClient",
    "ApiError",
    "AuthenticationError",
    "BatchExportError",
    "Connection",
    "IncompleteResultsError",
    "InsecureTransportError",
    "InvalidInputError",
    "ItemErrorsFound",
    "JobNotFinishedError",
    "JobNotFoundError",
    "JobStatus",
    "OutputError",
    "RequestRejectedError",
    "ResponseShapeError",
    "RetriesExhaustedError",
    "RetryPolicy",
    "Summary",
    "SyncIncomplete",
    "TransientApiError",
    "__version__",
    "export",
    "iter_batches",
    "read_export",
    "read_job",
    "read_jobs",
    "render_report",
    "summarize",
    "write_report",
]
