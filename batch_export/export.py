"""One export, end to end: fetch, flatten, write, summarize.

Data flows one way. :func:`iter_batches` fetches a finished job's pages and flattens each into
an Arrow record batch; :func:`export` writes those batches atomically to a file and returns
the :class:`~batch_export.summary.Summary`. The CLI's ``export`` command is this function.

Example (against the bundled emulator):

    >>> import tempfile, pathlib
    >>> from batch_export.testing import Emulator, generate_job
    >>> with Emulator(jobs=[generate_job(job_id="j1", items=30)], api_key="k") as emu:
    ...     out = pathlib.Path(tempfile.mkdtemp()) / "j1.parquet"
    ...     summary = export("j1", out, base_url=emu.base_url, api_key="k")
    >>> summary.rows
    30
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

import pyarrow as pa

from batch_export.atomic import atomic_output, check_writable
from batch_export.client import ApiClient, check_job_id
from batch_export.errors import ItemErrorsFound, OutputError
from batch_export.fetcher import MAX_PAGE_SIZE, WaitPolicy, iter_page_batches, wait_for_job
from batch_export.flatten import PAGE_POOL
from batch_export.job import JobStatus
from batch_export.progress import Progress
from batch_export.report import write_report
from batch_export.retry import RetryPolicy
from batch_export.summary import Summary, SummaryBuilder
from batch_export.writers import open_writer, resolve_format

__all__ = ["Connection", "ConnectionOptions", "export", "iter_batches"]

# Pages are joined into batches of about this many rows (or bytes) before the writer and the
# summary see them: each batch costs those a dozen pyarrow calls, and at 50 rows a page the
# calls cost more than the rows (2.6 of 5 seconds on a 100,000-item job, while threads fetch).
# Past 2 MB a batch only adds to the peak memory (40 MB more at 8 MB, on 20 KB items).
_JOINED_ROWS = 2_000
_JOINED_BYTES = 2 << 20


class ConnectionOptions(TypedDict, total=False):
    """The keyword options of :class:`Connection`, for functions that take them as ``**``."""

    base_url: str | None
    api_key: str | None
    page_size: int
    concurrency: int
    max_retries: int | None
    retry: RetryPolicy | None
    wait: bool
    timeout: float | None
    request_timeout: float
    allow_insecure_http: bool


@dataclass(frozen=True, kw_only=True)
class Connection:
    """How to reach the API and how to read a job: what the CLI's shared options set."""

    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)  # a secret: never in a repr
    page_size: int = MAX_PAGE_SIZE
    concurrency: int = 8
    max_retries: int | None = None
    retry: RetryPolicy | None = None
    wait: bool = True
    timeout: float | None = 3600.0
    request_timeout: float = 60.0
    allow_insecure_http: bool = False

    def client(self, *, sleep: Callable[[float], None] = time.sleep) -> ApiClient:
        """A client configured by these options."""
        retry = self.retry or RetryPolicy()
        if self.max_retries is not None:
            retry = dataclasses.replace(retry, attempts=self.max_retries + 1)
        return ApiClient(
            base_url=self.base_url,
            api_key=self.api_key,
            retry=retry,
            timeout=self.request_timeout,
            concurrency=self.concurrency,
            allow_insecure_http=self.allow_insecure_http,
            sleep=sleep,
        )


def iter_batches(
    client: ApiClient,
    job: JobStatus,
    *,
    page_size: int = MAX_PAGE_SIZE,
    concurrency: int = 8,
) -> Iterator[pa.RecordBatch]:
    """Yield one record batch of the item schema per page of a finished job, in page order."""
    for page in iter_page_batches(client, job, page_size=page_size, concurrency=concurrency):
        yield page.batch()


def export(
    job_id: str,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    connection: Connection | None = None,
    escape_formulas: bool = False,
    summary_path: str | os.PathLike[str] | None = None,
    failed_urls_path: str | os.PathLike[str] | None = None,
    report_path: str | os.PathLike[str] | None = None,
    fail_on_item_errors: bool = False,
    progress: Progress | None = None,
    client: ApiClient | None = None,
    **connection_options: Unpack[ConnectionOptions],
) -> Summary:
    """Export every item of ``job_id`` to ``path`` and return the summary.

    The file appears only when complete (see :mod:`batch_export.atomic`); the format comes
    from ``format`` or the path's extension. Connection options (``base_url``, ``api_key``,
    ``page_size``, ``concurrency``, ``max_retries``, ``wait``, ``timeout``, ...) may be given
    as keywords or as one :class:`Connection`. ``report_path`` also writes the HTML report
    (:mod:`batch_export.report`).
    """
    check_job_id(job_id)
    connection = connection or Connection(**connection_options)
    fmt = resolve_format(str(path), format)
    for destination in (path, summary_path, failed_urls_path, report_path):
        if destination is not None:
            check_writable(destination)
    progress = progress or Progress(enabled=False)
    owns_client = client is None
    client = client or connection.client()
    try:
        job = wait_for_job(
            client,
            job_id,
            wait=connection.wait,
            policy=WaitPolicy(timeout=connection.timeout),
            on_poll=progress.poll,
        )
        summary = _write(client, job, path, fmt, connection, escape_formulas, progress)
    finally:
        progress.close()
        if owns_client:
            client.close()
    _write_side_files(summary, summary_path, failed_urls_path)
    if report_path is not None:
        write_report(summary, report_path)
    if fail_on_item_errors and summary.failed_items:
        raise ItemErrorsFound(
            f"{summary.failed_items} of {summary.rows} items of job {job_id} failed "
            "(--fail-on-item-errors); the export itself was written.",
            job_id=job_id,
        )
    return summary


def _write(
    client: ApiClient,
    job: JobStatus,
    path: str | os.PathLike[str],
    fmt: str,
    connection: Connection,
    escape_formulas: bool,
    progress: Progress,
) -> Summary:
    builder = SummaryBuilder()
    expected = job.expected_items
    pages = math.ceil((expected or 0) / connection.page_size)
    progress.start(total_items=expected, total_pages=pages)
    with atomic_output(path) as sink:
        writer = open_writer(fmt, sink, escape_formulas=escape_formulas)
        page_batches = iter_batches(
            client, job, page_size=connection.page_size, concurrency=connection.concurrency
        )
        for batch in _joined(page_batches, progress):
            writer.write(batch)
            builder.add(batch)
        writer.close()
    return builder.build(
        job_id=job.job_id,
        job=job,
        requests=client.stats.to_dict(),
        output={"path": str(path), "format": fmt},
    )


def _joined(pages: Iterable[pa.RecordBatch], progress: Progress) -> Iterator[pa.RecordBatch]:
    """Consecutive page batches joined into batches of about ``_JOINED_ROWS`` rows, in order."""
    pending: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in pages:
        progress.advance(batch.num_rows)
        pending.append(batch)
        rows, size = rows + batch.num_rows, size + batch.nbytes
        if rows >= _JOINED_ROWS or size >= _JOINED_BYTES:
            yield pa.concat_batches(pending, memory_pool=PAGE_POOL)
            pending, rows, size = [], 0, 0
    if pending:
        yield pa.concat_batches(pending, memory_pool=PAGE_POOL)


def _write_side_files(
    summary: Summary,
    summary_path: str | os.PathLike[str] | None,
    failed_urls_path: str | os.PathLike[str] | None,
) -> None:
    if summary_path is not None:
        _write_text(summary_path, summary.to_json())
    if failed_urls_path is not None:
        _write_text(failed_urls_path, "".join(f"{url}\n" for url in summary.failed_urls))


def _write_text(path: str | os.PathLike[str], text: str) -> None:
    try:
        with atomic_output(path) as sink:
            sink.write(text.encode("utf-8"))
    except OSError as error:
        raise OutputError(f"Cannot write {Path(path)}: {error.strerror}.") from None
