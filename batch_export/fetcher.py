"""Wait for a job to finish, then read every page of its results, proven whole.

:func:`wait_for_job` polls the status endpoint with a growing interval until the job reaches
a terminal status (or the timeout passes). :func:`iter_page_batches` reads the pages of a
finished job concurrently, yields them in page order as Arrow record batches, and proves the
result whole: each ``input_index`` exactly once, and as many items as the job's finished
counters say. A page that comes back inconsistent (short, too long, repeating an index) is
re-read a bounded number of times; then the export fails with :class:`IncompleteResultsError`,
never a shorter file. :func:`iter_result_pages` does the same with the items as parsed JSON.

Pages are read into Arrow in the worker threads, where pyarrow's JSON reader runs without the
GIL (see :func:`batch_export.flatten.read_page_batch`); the main thread only checks and writes.

Example (against the bundled emulator):

    >>> from batch_export.testing import Emulator, generate_job
    >>> from batch_export.client import ApiClient
    >>> with Emulator(jobs=[generate_job(job_id="j1", items=120)], api_key="k") as emu:
    ...     client = ApiClient(base_url=emu.base_url, api_key="k")
    ...     job = wait_for_job(client, "j1")
    ...     sum(p.batch().num_rows for p in iter_page_batches(client, job, page_size=50))
    120
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar

import pyarrow as pa

from batch_export.client import ApiClient, check_job_id, decode_json
from batch_export.errors import IncompleteResultsError, JobNotFinishedError, ResponseShapeError
from batch_export.flatten import flatten_items, read_page_batch
from batch_export.job import JobStatus, ResultPage

__all__ = [
    "MAX_PAGE_SIZE",
    "PageBatch",
    "WaitPolicy",
    "fetch_page_batch",
    "iter_page_batches",
    "iter_result_pages",
    "wait_for_job",
]

MAX_PAGE_SIZE = 50
_SHOWN_INDEXES = 10
# After this many pages of a job that pyarrow's reader could not take (undocumented fields,
# most likely on every page), the rest go straight to the general road.
_DECLINES_BEFORE_GIVING_UP = 3


class _Page(Protocol):
    """What the ledger needs of a page: its number and its items' indexes."""

    @property
    def page(self) -> int: ...

    def input_indexes(self) -> list[int]: ...


P = TypeVar("P", bound=_Page)


@dataclass(frozen=True, kw_only=True)
class WaitPolicy:
    """How to wait for a job: polling interval growing from ``first_interval`` to
    ``max_interval`` by ``growth``, for at most ``timeout`` seconds (None: no limit)."""

    timeout: float | None = 3600.0
    first_interval: float = 1.0
    growth: float = 1.5
    max_interval: float = 15.0


def wait_for_job(
    client: ApiClient,
    job_id: str,
    *,
    wait: bool = True,
    policy: WaitPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_poll: Callable[[JobStatus], None] | None = None,
) -> JobStatus:
    """Poll ``job_id`` until it is completed, failed or cancelled, and return its status.

    With ``wait=False`` an unfinished job raises :class:`JobNotFinishedError` at once.
    """
    policy = policy or WaitPolicy()
    deadline = None if policy.timeout is None else clock() + policy.timeout
    interval = policy.first_interval
    while True:
        job = client.fetch_page(job_id, page=1, page_size=1).job
        if on_poll is not None:
            on_poll(job)
        if job.is_terminal:
            return job
        if not wait:
            raise JobNotFinishedError(
                f"Job {job_id} is still {job.status} ({_progress(job)}): rerun later, "
                "or without --no-wait to wait for it.",
                job_id=job_id,
                status=job.status,
            )
        if deadline is not None and clock() + interval > deadline:
            raise JobNotFinishedError(
                f"Job {job_id} was still {job.status} ({_progress(job)}) after waiting "
                f"{policy.timeout:g} s: rerun later, or raise --timeout.",
                job_id=job_id,
                status=job.status,
            )
        sleep(interval)
        interval = min(policy.max_interval, interval * policy.growth)


def _progress(job: JobStatus) -> str:
    return f"{job.finished_items} of {job.total_urls if job.total_urls is not None else '?'} done"


@dataclass(frozen=True, kw_only=True)
class PageBatch:
    """One page of a job's results, on its way to becoming a record batch of the item schema.

    A page that pyarrow's reader took holds its batch already; any other page holds its parsed
    items, flattened by :meth:`batch` in the consumer's thread, after the completeness checks,
    so that errors come in the same order whichever road the page took.
    """

    job_id: str
    page: int
    page_size: int
    indexes: list[int] = field(repr=False)
    arrow: pa.RecordBatch | None = field(default=None, repr=False)
    items: list[dict[str, Any]] | None = field(default=None, repr=False)

    def input_indexes(self) -> list[int]:
        """The ``input_index`` of each item, in the page's order."""
        return self.indexes

    def batch(self) -> pa.RecordBatch:
        """The page's rows; raises :class:`ResponseShapeError` for a value of a wrong type."""
        if self.arrow is not None:
            return self.arrow
        return flatten_items(self.job_id, self.items or [], page=self.page)


class _PageReader:
    """Reads result pages of one job into :class:`PageBatch` objects, from any thread."""

    def __init__(self, client: ApiClient, job_id: str, page_size: int) -> None:
        self.client = client
        self.job_id = check_job_id(job_id)
        self.page_size = page_size
        # Races between workers only make a page or two try pyarrow once more: harmless.
        self.declines = 0

    def __call__(self, number: int) -> PageBatch:
        body = self.client.get_decoded(
            f"/v1/batch/{self.job_id}",
            {"page": number, "page_size": self.page_size},
            self._decode,
            job_id=self.job_id,
            page=number,
        )
        if isinstance(body, _Read):
            return PageBatch(
                job_id=self.job_id,
                page=number,
                page_size=self.page_size,
                indexes=body.indexes,
                arrow=body.batch,
            )
        page = ResultPage.from_response(
            body, job_id=self.job_id, page=number, page_size=self.page_size
        )
        return PageBatch(
            job_id=self.job_id,
            page=number,
            page_size=self.page_size,
            indexes=page.input_indexes(),
            items=page.results,
        )

    def _decode(self, content: bytes, url: str) -> _Read | Any:
        if self.declines < _DECLINES_BEFORE_GIVING_UP:
            read = read_page_batch(content, self.job_id)
            if read is not None:
                return _Read(*read)
            self.declines += 1
        return decode_json(content, url)


class _Read(NamedTuple):
    """A page that pyarrow's reader took (a parsed JSON body is any other value)."""

    batch: pa.RecordBatch
    indexes: list[int]


def fetch_page_batch(client: ApiClient, job_id: str, *, page: int, page_size: int) -> PageBatch:
    """``GET /v1/batch/{job_id}?page=&page_size=``, retried, as a :class:`PageBatch`."""
    return _PageReader(client, job_id, page_size)(page)


def iter_page_batches(
    client: ApiClient,
    job: JobStatus,
    *,
    page_size: int = MAX_PAGE_SIZE,
    concurrency: int = 8,
    rereads: int = 2,
) -> Iterator[PageBatch]:
    """Yield every page of a finished job's results in order, proven whole at the end.

    The pages come as :class:`PageBatch` objects: ``page.batch()`` is a record batch of
    :data:`~batch_export.schema.ITEM_SCHEMA`.
    """
    reader = _PageReader(client, job.job_id, page_size)
    yield from _proven_pages(reader, job, page_size, concurrency, rereads)


def iter_result_pages(
    client: ApiClient,
    job: JobStatus,
    *,
    page_size: int = MAX_PAGE_SIZE,
    concurrency: int = 8,
    rereads: int = 2,
) -> Iterator[ResultPage]:
    """Yield every page of a finished job's results in order, proven whole at the end."""

    def fetch(number: int) -> ResultPage:
        return client.fetch_page(job.job_id, page=number, page_size=page_size)

    yield from _proven_pages(fetch, job, page_size, concurrency, rereads)


def _proven_pages(
    fetch: Callable[[int], P], job: JobStatus, page_size: int, concurrency: int, rereads: int
) -> Iterator[P]:
    """Fetch every page with ``fetch(number)``, check each against the ledger, yield in order."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    expected = job.expected_items
    if expected is None:
        raise ResponseShapeError(
            f"Job {job.job_id} has no item counters nor `total_urls`, so its results cannot be "
            "proven whole.",
            job_id=job.job_id,
        )
    ledger = _Ledger(job.job_id, expected, page_size)
    page_count = max(1, math.ceil(expected / page_size))
    # The response carries no page count: a full last page means one more must be asked for.
    # When the counters say the last page is full, that one is asked for with the others,
    # rather than one round trip after them.
    probe = int(expected > 0 and expected % page_size == 0)
    pages = _pages_in_order(fetch, page_count + probe, concurrency)
    with contextlib.closing(pages):
        last: P | None = None
        for page in itertools.islice(pages, page_count):
            last = ledger.accept(_reread_until_consistent(fetch, page, ledger, rereads))
            yield last
        number = page_count
        while last is not None and len(last.input_indexes()) == page_size:
            number += 1
            probed = next(pages, None)  # the probe, if it was asked for with the others
            last = probed if probed is not None else fetch(number)
            if last.input_indexes():
                yield ledger.accept(_reread_until_consistent(fetch, last, ledger, rereads))
    ledger.prove_whole()


def _pages_in_order(
    fetch: Callable[[int], P], page_count: int, concurrency: int
) -> Generator[P, None, None]:
    """Fetch pages 1..page_count with a bounded pool, yielding them in page order."""
    # Two pages per worker ahead: workers never wait for the consumer, and memory holds at
    # most that many pages, whatever the size of the job.
    window = max(1, concurrency) * 2
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="page") as pool:
        pending: dict[int, Future[P]] = {}
        next_page = 1
        try:
            for number in range(1, page_count + 1):
                while next_page <= page_count and len(pending) < window:
                    pending[next_page] = pool.submit(fetch, next_page)
                    next_page += 1
                yield pending.pop(number).result()
        finally:
            for future in pending.values():
                future.cancel()


def _reread_until_consistent(
    fetch: Callable[[int], P], page: P, ledger: _Ledger, rereads: int
) -> P:
    for _ in range(rereads):
        if not ledger.problems(page):
            return page
        page = fetch(page.page)
    return page


class _Ledger:
    """Which input indexes have been seen, and whether each page fits the counters."""

    def __init__(self, job_id: str, expected: int, page_size: int) -> None:
        self.job_id = job_id
        self.expected = expected
        self.page_size = page_size
        self.seen: set[int] = set()
        self.repeated: set[int] = set()

    def expected_on(self, page: int) -> int:
        return max(0, min(self.page_size, self.expected - (page - 1) * self.page_size))

    def problems(self, page: _Page) -> list[str]:
        indexes = page.input_indexes()
        found: list[str] = []
        repeats = sorted(
            {i for i, n in Counter(indexes).items() if n > 1} | (self.seen & set(indexes))
        )
        if repeats:
            found.append(f"input_index {_list(repeats)} came more than once")
        wanted = self.expected_on(page.page)
        if len(indexes) != wanted:
            found.append(f"page {page.page} held {len(indexes)} items where {wanted} were expected")
        return found

    def accept(self, page: P) -> P:
        """Record a page, or raise if it is still inconsistent."""
        problems = self.problems(page)
        indexes = page.input_indexes()
        self.repeated |= self.seen & set(indexes)
        self.repeated |= {i for i, n in Counter(indexes).items() if n > 1}
        self.seen.update(indexes)
        if problems:
            raise self._error(problems)
        return page

    def prove_whole(self) -> None:
        """Raise unless every expected item was seen exactly once."""
        if self.repeated or len(self.seen) != self.expected:
            raise self._error([])

    def _error(self, problems: list[str]) -> IncompleteResultsError:
        missing = self._gaps()
        parts = [*problems]
        parts.append(f"expected {self.expected} items by the job's counters, read {len(self.seen)}")
        if self.repeated:
            parts.append(f"repeated input_index {_list(sorted(self.repeated))}")
        if missing:
            parts.append(f"missing input_index {_list(missing)}")
        return IncompleteResultsError(
            f"The results of job {self.job_id} are not provably whole ({'; '.join(parts)}), "
            "even after re-reading: nothing was written. Rerun the export later; if it "
            "persists, report the job id to the API provider.",
            job_id=self.job_id,
            missing=tuple(missing),
            repeated=tuple(sorted(self.repeated)),
        )

    def _gaps(self) -> list[int]:
        """Indexes absent from 0..max seen; a guess only, since invalid URLs may hold places."""
        if len(self.seen) >= self.expected:
            return []
        top = max(max(self.seen, default=-1), self.expected - 1)
        return [i for i in range(top + 1) if i not in self.seen][: self.expected - len(self.seen)]


def _list(indexes: list[int]) -> str:
    shown = ", ".join(map(str, indexes[:_SHOWN_INDEXES]))
    more = len(indexes) - _SHOWN_INDEXES
    return shown + (f" and {more} more" if more > 0 else "")
