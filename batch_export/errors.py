"""The one error tree of batch-export.

Every failure that a user can meet is one of these, each carrying its context and the exit
code the CLI ends with. Third-party exceptions (requests, pyarrow, OS errors) are translated
into this tree at the boundary where they happen; nothing else escapes the library for an
expected failure.

    BatchExportError                     exit 1  (root; never raised itself)
    ├── InvalidInputError                exit 2  a job id, option or file given is not usable
    ├── ApiError                         exit 7  the API answered something we cannot use
    │   ├── AuthenticationError          exit 3  401/403: the API key was rejected
    │   ├── JobNotFoundError             exit 4  404: no such job (or no longer kept)
    │   ├── RequestRejectedError         exit 7  400/409/422 and other final refusals
    │   │   └── InsufficientBalanceError exit 11 402: the account's balance is spent
    │   ├── TransientApiError            exit 7  429, 5xx, dropped or cut-short answers; retried
    │   │   └── RetriesExhaustedError    exit 7  ... until the retry policy gave up
    │   └── ResponseShapeError           exit 7  an answer that does not fit: a field missing, of
    │                                            the wrong type or past its bound, another job's
    │                                            answer, a body past --max-response-mb
    ├── InsecureTransportError           exit 2  the key would go in clear text
    ├── JobNotFinishedError              exit 5  --no-wait on an unfinished job, or --timeout passed
    ├── IncompleteResultsError           exit 6  the items cannot be proven whole (gaps, repeats)
    ├── OutputError                      exit 8  the destination cannot be written
    ├── ItemErrorsFound                  exit 9  items failed and --fail-on-item-errors was given
    └── SyncIncomplete                   exit 10 sync: some jobs failed, the others were exported

Example:

    >>> from batch_export.errors import JobNotFoundError
    >>> err = JobNotFoundError("Job 'x' was not found.", job_id="x", http_status=404)
    >>> err.exit_code, err.job_id
    (4, 'x')
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BatchExportError",
    "IncompleteResultsError",
    "InsecureTransportError",
    "InsufficientBalanceError",
    "InvalidInputError",
    "ItemErrorsFound",
    "JobNotFinishedError",
    "JobNotFoundError",
    "OutputError",
    "RequestRejectedError",
    "ResponseShapeError",
    "RetriesExhaustedError",
    "SyncIncomplete",
    "TransientApiError",
]


class BatchExportError(Exception):
    """Root of every error batch-export raises on purpose.

    The message is one or two sentences for a person: what happened, then what to do.
    Context travels as attributes so that logs and summaries can carry it as data.
    """

    exit_code: ClassVar[int] = 1

    def __init_subclass__(cls, *, exit_code: int | None = None, **kwargs: object) -> None:
        """Take a subclass's exit code from its header, ``class E(ApiError, exit_code=3)``,
        so the tree reads as the table above; without one it keeps its parent's."""
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        page: int | None = None,
        url: str | None = None,
        attempt: int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.job_id = job_id
        self.page = page
        self.url = url
        self.attempt = attempt
        self.http_status = http_status

    def __str__(self) -> str:
        return self.message

    def context(self) -> dict[str, object]:
        """The error's context as a flat dict, for JSON logs and summaries."""
        fields = {
            "error": type(self).__name__,
            "message": self.message,
            "exit_code": self.exit_code,
            "job_id": self.job_id,
            "page": self.page,
            "url": self.url,
            "attempt": self.attempt,
            "http_status": self.http_status,
        }
        return {key: value for key, value in fields.items() if value is not None}


class InvalidInputError(BatchExportError, exit_code=2):
    """Something the user gave (job id, option value, input file) is not usable."""


class InsecureTransportError(BatchExportError, exit_code=2):
    """The API key would be sent in clear text to a host other than loopback."""


class ApiError(BatchExportError, exit_code=7):
    """The API answered, or failed to answer, in a way we cannot use."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        correlation_id: str | None = None,
        **context: object,
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.code = code
        self.correlation_id = correlation_id

    def context(self) -> dict[str, object]:
        fields = super().context()
        if self.code is not None:
            fields["code"] = self.code
        if self.correlation_id is not None:
            fields["correlation_id"] = self.correlation_id
        return fields


class AuthenticationError(ApiError, exit_code=3):
    """401 or 403: the API key is missing, invalid or not allowed."""


class JobNotFoundError(ApiError, exit_code=4):
    """404: the job does not exist, or the provider no longer keeps it."""


class RequestRejectedError(ApiError):
    """A final refusal (400, 402, 409, 422, ...): retrying would not help."""


class InsufficientBalanceError(RequestRejectedError, exit_code=11):
    """402: the account's balance cannot pay for the request (``scrape`` stops at once)."""


class TransientApiError(ApiError):
    """A failure that may pass: 429, 5xx, a dropped connection, a body cut short.

    ``retry_after`` is the server's hint in seconds, when it gave a usable one.
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, **context: object
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.retry_after = retry_after


class RetriesExhaustedError(TransientApiError):
    """A transient failure that lasted through every attempt of the retry policy."""


class ResponseShapeError(ApiError):
    """An answer that does not fit what was asked.

    A needed field is missing; a field has the wrong type or is past its bound; the answer is
    for another job than the one asked; the body is larger than the client's bound.
    """


class JobNotFinishedError(BatchExportError, exit_code=5):
    """The job is not in a terminal status and we were told not to wait (longer)."""

    def __init__(self, message: str, *, status: str | None = None, **context: object) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.status = status


class IncompleteResultsError(BatchExportError, exit_code=6):
    """The items read cannot be proven to be the job's items, each exactly once."""

    def __init__(
        self,
        message: str,
        *,
        missing: tuple[int, ...] = (),
        repeated: tuple[int, ...] = (),
        **context: object,
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.missing = missing
        self.repeated = repeated


class OutputError(BatchExportError, exit_code=8):
    """The destination cannot be written (permissions, missing folder, full disk, ...)."""


class ItemErrorsFound(BatchExportError, exit_code=9):
    """The export succeeded, but items failed and the caller asked to treat that as an error."""


class SyncIncomplete(BatchExportError, exit_code=10):
    """A sync exported what it could, but some jobs failed; rerunning it retries only those."""

    def __init__(
        self, message: str, *, failed_jobs: tuple[str, ...] = (), **context: object
    ) -> None:
        super().__init__(message, **context)  # type: ignore[arg-type]
        self.failed_jobs = failed_jobs
