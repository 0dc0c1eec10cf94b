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
    TransientApiError,
)
from batch_export.export import Connection, export, iter_batches
from batch_export.job import JobStatus
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
    "TransientApiError",
    "__version__",
    "export",
    "iter_batches",
]
