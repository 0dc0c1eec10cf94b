"""The one road from a job id to record batches: wait, read, prove whole, join, count.

Every caller takes this road and only says where the batches go: the CLI's export and
:func:`batch_export.export.export` hand them to a file writer
(:func:`batch_export.writers.sink.write_batches`), the notebook functions
(:mod:`batch_export.frame`) to a list or an iterator, the sync (:mod:`batch_export.sync`) to a
store. A guard added here (the answer is the job asked for,
the pages are whole) holds for all of them.

:func:`open_job` waits for the job (or, with ``assume_finished``, takes page 1 as its status:
one round trip for a job of up to 50 items), then returns a :class:`JobStream`: iterate it
for record batches of :data:`~batch_export.schema.ITEM_SCHEMA`, in ``input_index`` page order,
joined into batches of about 2,000 rows; the pages are proven whole when the iteration ends.
:meth:`JobStream.summary` counts what went by.

Example (against the bundled emulator):

    >>> from batch_export.connection import Connection
    >>> from batch_export.testing import Emulator, generate_job
    >>> with Emulator(jobs=[generate_job(job_id="j1", items=120)], api_key="k") as emu:
    ...     connection = Connection(base_url=emu.base_url, api_key="k")
    ...     with open_job("j1", connection=connection) as stream:
    ...         rows = sum(batch.num_rows for batch in stream)
    ...     summary = stream.summary()
    >>> stream.job.status, rows, summary.rows
    ('completed', 120, 120)
"""

from __future__ import annotations

import importlib
import itertools
import math
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from batch_export.connection import Connection
from batch_export.errors import BatchExportError, JobNotFinishedError
from batch_export.fetch.client import ApiClient
from batch_export.fetch.job_id import check_job_id
from batch_export.fetch.pages import WaitPolicy, iter_pages, read_status
from batch_export.fetch.secret import KeyPatterns
from batch_export.flatten.scan import PageScanner, ResultBody
from batch_export.job import JobStatus
from batch_export.summary.progress import Progress

if TYPE_CHECKING:
    import pyarrow as pa

    from batch_export.flatten.scrub import BatchScrub
    from batch_export.summary.counts import Summary, SummaryBuilder
    from batch_export.summary.failures import FailureTally

__all__ = ["JobStream", "load_arrow_side", "open_job"]

# Pages are joined into batches of about this many rows (or bytes) before the writer and the
# summary see them: each batch costs those a dozen pyarrow calls, and at 50 rows a page the
# calls cost more than the rows (2.6 of 5 seconds on a 100,000-item job, while threads fetch).
# Past a megabyte a batch only adds to the peak memory (40 MB more at 8 MB, on 20 KB items;
# about 10 MB more at 2 MB, on a 100,000-item job).
JOINED_ROWS = 2_000
JOINED_BYTES = 1 << 20


class JobStream:
    """A finished job's items as record batches, counted as they go by.

    ``job`` is the job's status as read before its pages; ``rows`` counts the rows yielded
    so far; ``hidden`` the runs of the API key hidden so far, in the job's fields and in the
    items (see :mod:`batch_export.flatten.scrub`). Iterate once.
    """

    def __init__(
        self,
        job: JobStatus,
        pages: Iterator[ResultBody],
        *,
        client: ApiClient,
        progress: Progress,
        count: bool = True,
        key: KeyPatterns | None = None,
        hidden: int = 0,
    ) -> None:
        self.job = job
        self._count = count
        self.rows = 0
        self._pages = pages
        self._client = client
        self._progress = progress
        self._builder: SummaryBuilder | None = None
        self._failures: FailureTally | None = None
        self._key = key
        self._hidden_in_job = hidden
        self._scrub: BatchScrub | None = None
        self._items_changed = 0

    @property
    def hidden(self) -> int:
        """Runs of the API key replaced by ``<hidden>`` so far: job fields and items."""
        return self._hidden_in_job + (self._scrub.hidden if self._scrub is not None else 0)

    @property
    def values_changed(self) -> int:
        """Values that had to change to be held (``NaN`` to null, text that is not UTF-8 to
        U+FFFD; :func:`batch_export.job.decode_json`): the job's fields and the items so far."""
        return self.job.values_changed + self._items_changed

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        from batch_export.batches import joined
        from batch_export.flatten.chunks import read_in_chunks
        from batch_export.flatten.items import PAGE_POOL
        from batch_export.flatten.scrub import BatchScrub
        from batch_export.summary.counts import SummaryBuilder
        from batch_export.summary.failures import FailureTally

        if self._count:
            self._builder = SummaryBuilder()
        # The failure codes are tallied even when nothing else is counted: the sync's jobs
        # table shows them (two pyarrow calls a batch).
        self._failures = failures = FailureTally()
        self._scrub = scrub = BatchScrub(self._key)
        chunks = read_in_chunks(self._pages, on_changed=self._changed)
        batches = (self._advanced(batch) for batch in chunks)
        whole = joined(batches, rows=JOINED_ROWS, nbytes=JOINED_BYTES, memory_pool=PAGE_POOL)
        # The key hidden here, once, before anything counts or writes a batch.
        for batch in scrub.over(whole):
            if self._builder is not None:
                self._builder.add(batch)
            failures.add(batch)
            self.rows += batch.num_rows
            yield batch
        self._progress.close()

    def failure_columns(self) -> dict[str, Any]:
        """The failed items' codes so far, as a jobs table holds them (``failure_codes``,
        ``failed_retryable``; see :class:`~batch_export.summary.failures.FailureTally`)."""
        from batch_export.summary.failures import FailureTally

        return (self._failures or FailureTally()).columns()

    def summary(self, *, output: dict[str, Any] | None = None) -> Summary:
        """The summary of the rows that went by, with the job's own figures."""
        from batch_export.summary.counts import SummaryBuilder

        return (self._builder or SummaryBuilder()).build(
            job_id=self.job.job_id,
            job=self.job,
            requests=self._client.stats.to_dict(),
            output=output,
            api_key_hidden=self.hidden,
            values_changed=self._items_changed,
        )

    def _changed(self, values: int) -> None:
        self._items_changed += values

    def _advanced(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self._progress.advance(batch.num_rows)
        return batch


@contextmanager
def open_job(
    job_id: str,
    *,
    connection: Connection,
    client: ApiClient | None = None,
    progress: Progress | None = None,
    assume_finished: bool = False,
    concurrency: int | None = None,
    count: bool = True,
) -> Iterator[JobStream]:
    """Wait for ``job_id`` to finish, then yield its :class:`JobStream`.

    ``client`` may be shared with other jobs (its concurrency limit is then shared too);
    without one, a client is made from ``connection`` and closed at the end.
    ``assume_finished`` skips the waiting: page 1 is read as the job's status, and a job that
    is not finished after all is a :class:`~batch_export.errors.JobNotFinishedError`.
    ``concurrency`` bounds the pages of this job in flight (default: the connection's).
    ``count=False`` skips the summary's counting, for callers that do not ask for it.

    The job id is checked, and a UUID put in its canonical form (see
    :func:`~batch_export.fetch.job_id.check_job_id`), here: every caller takes this entry.
    What the server wrote is kept from showing the API key: every run of 8 of its characters
    in the job's fields, in the items and in the errors raised on the way becomes ``<hidden>``.
    """
    job_id = check_job_id(job_id)
    load_arrow_side()
    progress = progress or Progress(enabled=False)
    owned = client is None
    client = client or connection.client()
    try:
        job, first = _status(client, job_id, connection, progress, assume_finished)
        shown, hidden = client.secret.hide_in_job(job)
        pages = connection.page_size
        progress.start(
            total_items=job.expected_items,
            total_pages=math.ceil((job.expected_items or 0) / pages),
        )
        stream = iter_pages(
            client,
            job,
            PageScanner(job.job_id, page_size=pages),
            page_size=pages,
            concurrency=concurrency or connection.concurrency,
            first=first,
        )
        # Page 1 is taken now: that sets the fetching threads to work on the other pages
        # while the caller waits for the Arrow side (loading meanwhile, see load_arrow_side)
        # and opens its writer. One round trip less on the critical path.
        head = next(stream, None)
        pages_read = stream if head is None else itertools.chain([head], stream)
        yield JobStream(
            shown,
            pages_read,
            client=client,
            progress=progress,
            count=count,
            key=client.secret.patterns,
            hidden=hidden,
        )
    except BatchExportError as error:
        # Raised by the pages, the flattening, the ledger or the caller's writing: any of
        # them may quote what the server wrote.
        client.secret.scrub(error)
        raise
    finally:
        progress.close()
        if owned:
            client.close()


# What reading pages into Arrow needs; pyarrow and numpy take a third of a second to load.
# (pandas is not on the export's road nor the sync's: pyarrow imports it on its first
# conversion of Python values, which both avoid; tests/test_imports.py holds them to it.)
_ARROW_SIDE = (
    "batch_export.flatten.chunks",
    "batch_export.flatten.scrub",
    "batch_export.summary.counts",
    "batch_export.writers.parquet",
)


def load_arrow_side() -> None:
    """Load the Arrow side in a thread of its own, while the first requests are in flight.

    The first answers need only the HTTP side and the scan; whoever needs an Arrow module
    before it is loaded waits for it at its import, as Python's import lock makes it do.
    """
    if all(name in sys.modules for name in _ARROW_SIDE):
        return
    threading.Thread(
        target=_import_all, args=(_ARROW_SIDE,), name="load-arrow", daemon=True
    ).start()


def _import_all(names: tuple[str, ...]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:
            # Only a head start: whoever needs the module imports it again, and gets the
            # error where it can be reported. A thread's traceback on stderr would break
            # the one-sentence (or JSON-lines) promise.
            return


def _status(
    client: ApiClient,
    job_id: str,
    connection: Connection,
    progress: Progress,
    assume_finished: bool,
) -> tuple[JobStatus, ResultBody | None]:
    # Page 1 is scanned only (its job fields checked as the general road checks them): a
    # finished job's first answer is read once, by the decoder of every other page.
    scanner = PageScanner(job_id, page_size=connection.page_size)
    if not assume_finished:
        return read_status(
            client,
            job_id,
            scanner,
            wait=connection.wait,
            policy=WaitPolicy(timeout=connection.timeout),
            on_poll=lambda job: progress.poll(client.secret.hide_in_job(job)[0]),
            first_page_size=connection.page_size,
        )
    first = client.fetch_page(job_id, page=1, page_size=connection.page_size, decode=scanner)
    assert first.job is not None  # the scanner sets it on both roads
    if not first.job.is_terminal:
        raise JobNotFinishedError(
            f"Job {job_id} was listed as finished, but its status is {first.job.status}: "
            "the next sync exports it once it is finished.",
            job_id=job_id,
            status=first.job.status,
        )
    return first.job, first
