"""One export, end to end: fetch, flatten, write, summarize.

Data flows one way: :func:`export` takes the job's record batches from the pipeline
(:func:`batch_export.pipeline.open_job`), writes them atomically to a file and returns the
:class:`~batch_export.summary.counts.Summary`. The CLI's ``export`` command is this function.

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

import os
from typing import TYPE_CHECKING, Unpack

from batch_export.atomic import atomic_output, check_writable, write_bytes
from batch_export.connection import Connection, ConnectionOptions
from batch_export.errors import ItemErrorsFound
from batch_export.fetch.client import ApiClient
from batch_export.pipeline import open_job
from batch_export.summary.progress import Progress
from batch_export.writers import check_options, resolve_format
from batch_export.writers.sink import write_batches

if TYPE_CHECKING:
    from batch_export.summary.counts import Summary

__all__ = ["Connection", "ConnectionOptions", "export"]


def export(
    job_id: str,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    connection: Connection | None = None,
    escape_formulas: bool = False,
    summary_path: str | os.PathLike[str] | None = None,
    failed_urls_path: str | os.PathLike[str] | None = None,
    failed_urls_retryable_path: str | os.PathLike[str] | None = None,
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
    (:mod:`batch_export.summary.report`); ``failed_urls_retryable_path`` the failed URLs whose
    failure code says resubmitting may help (:mod:`batch_export.codes`), one a line.
    """
    connection = connection or Connection(**connection_options)
    fmt = resolve_format(str(path), format)
    check_options(fmt, escape_formulas=escape_formulas)
    side_files = (summary_path, failed_urls_path, failed_urls_retryable_path, report_path)
    for destination in (path, *side_files):
        if destination is not None:
            check_writable(destination)
    with (
        open_job(job_id, connection=connection, client=client, progress=progress) as stream,
        atomic_output(path) as sink,
    ):
        write_batches(stream, sink, format=fmt, job=stream.job, escape_formulas=escape_formulas)
    summary = stream.summary(output={"path": str(path), "format": fmt})
    if summary_path is not None:
        write_bytes(summary_path, summary.to_json().encode("utf-8"))
    if failed_urls_path is not None:
        write_bytes(failed_urls_path, summary.failed_urls_text().encode("utf-8"))
    if failed_urls_retryable_path is not None:
        retryable = summary.failed_urls_text(retryable_only=True)
        write_bytes(failed_urls_retryable_path, retryable.encode("utf-8"))
    if report_path is not None:
        # Imported here: the report's failure notes load pyarrow, which must not delay the
        # first request (the Arrow side loads on a thread while it is in flight).
        from batch_export.summary.report import write_report

        write_report(summary, report_path)
    if fail_on_item_errors and summary.failed_items:
        raise ItemErrorsFound(
            f"{summary.failed_items} of {summary.rows} items of job {summary.job_id} failed "
            "(--fail-on-item-errors); the export itself was written.",
            job_id=summary.job_id,
        )
    return summary
