"""Wait for a job to finish, then read every page of its results, proven whole.

:func:`wait_for_job` polls the status endpoint with a growing interval until the job reaches
a terminal status (or the timeout passes). :func:`iter_pages` reads the pages of a finished
job concurrently, yields them in page order, and proves the result whole: each
``input_index`` exactly once, and as many items as the job's finished counters say. A page
that comes back inconsistent (short, too long, repeating an index) is re-read a bounded
number of times; then the read fails with :class:`IncompleteResultsError`, never a shorter
result.

The fetcher knows HTTP and the API's answers, not what the pages become: the caller passes
a ``decode(content, url, page)`` that turns a page's bytes into any object with a ``page``
number and ``input_indexes()``. The requests are in flight in libcurl's thread; ``decode``
runs in the thread that iterates, as each page is taken in turn: the pipeline passes a scan
that only finds each page's indexes and road (:class:`batch_export.flatten.scan.PageScanner`),
and reads pages into Arrow later, in chunks. :func:`iter_result_pages` is the same road with the
items as parsed JSON (:class:`~batch_export.job.ResultPage`).

Example (against the bundled emulator):

    >>> from batch_export.testing import Emulator, generate_job
    >>> from batch_export.fetch.client import ApiClient
    >>> with Emulator(jobs=[generate_job(job_id="j1", items=120)], api_key="k") as emu:
    ...     client = ApiClient(base_url=emu.base_url, api_key="k")
    ...     job = wait_for_job(client, "j1")
    ...     sum(len(p.results) for p in iter_result_pages(client, job, page_size=50))
    120
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Protocol, TypedDict, TypeVar, Unpack

from batch_export.api import DEFAULT_CONCURRENCY, DEFAULT_WAIT_TIMEOUT, MAX_PAGE_SIZE
from batch_export.errors import JobNotFinishedError, ResponseShapeError
from batch_export.fetch.client import ApiClient, Pending, result_pages
from batch_export.fetch.ledger import Ledger
from batch_export.job import JobStatus, ResultPage, decode_json

__all__ = [
    "MAX_PAGE_SIZE",
    "Page",
    "PageDecoder",
    "WaitOptions",
    "WaitPolicy",
    "iter_pages",
    "iter_result_pages",
    "read_status",
    "wait_for_job",
]


class Page(Protocol):
    """What the ledger needs of a page (its number and its items' indexes), and the status
    of the job that came with it."""

    @property
    def page(self) -> int: ...

    @property
    def job(self) -> JobStatus | None: ...

    def input_indexes(self) -> list[int]: ...


P = TypeVar("P", bound=Page)
PageDecoder = Callable[[bytes, str, int], P]
"""``decode(content, url, page)``: a 200 answer's bytes as a page object (see the module)."""


@dataclass(frozen=True, kw_only=True)
class WaitPolicy:
    """How to wait for a job: polling interval growing from ``first_interval`` to
    ``max_interval`` by ``growth``, for at most ``timeout`` seconds (None: no limit)."""

    timeout: float | None = DEFAULT_WAIT_TIMEOUT
    first_interval: float = 1.0
    growth: float = 1.5
    max_interval: float = 15.0


class WaitOptions(TypedDict, total=False):
    """How :func:`wait_for_job` and :func:`read_status` wait (see :func:`read_status`)."""

    wait: bool
    policy: WaitPolicy | None
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    on_poll: Callable[[JobStatus], None] | None


def wait_for_job(client: ApiClient, job_id: str, **options: Unpack[WaitOptions]) -> JobStatus:
    """Poll ``job_id`` until it is completed, failed or cancelled, and return its status.

    With ``wait=False`` an unfinished job raises :class:`JobNotFinishedError` at once.
    """
    job, _ = read_status(client, job_id, result_pages(job_id, page_size=1), **options)
    return job


def read_status(
    client: ApiClient,
    job_id: str,
    decode: PageDecoder[P],
    *,
    wait: bool = True,
    policy: WaitPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_poll: Callable[[JobStatus], None] | None = None,
    first_page_size: int = 1,
) -> tuple[JobStatus, P | None]:
    """:func:`wait_for_job`, also returning page 1 when the first look found the job finished.

    The first look asks for ``first_page_size`` items, decoded by ``decode`` (the decoder of
    the pages that follow): for a job that is finished already (the common case), that answer
    is page 1 of its results, read once, one round trip saved. Later polls ask for one item
    only, and are read for the job's status alone.
    """
    policy = policy or WaitPolicy()
    deadline = None if policy.timeout is None else clock() + policy.timeout
    interval = policy.first_interval
    first: P | None = client.fetch_page(job_id, page=1, page_size=first_page_size, decode=decode)
    while True:
        job = _status_of(first) if first is not None else _poll(client, job_id)
        if on_poll is not None:
            on_poll(job)
        if job.is_terminal:
            return job, first
        first = None
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


def _status_of(page: Page) -> JobStatus:
    if page.job is None:  # a decoder's promise, kept by every decoder of the package
        raise ResponseShapeError(f"Page {page.page} came without the job's status.")
    return page.job


def _poll(client: ApiClient, job_id: str) -> JobStatus:
    return client.fetch_page(job_id, page=1, page_size=1).job


def _progress(job: JobStatus) -> str:
    return f"{job.finished_items} of {job.total_urls if job.total_urls is not None else '?'} done"


def iter_pages(
    client: ApiClient,
    job: JobStatus,
    decode: PageDecoder[P],
    *,
    page_size: int = MAX_PAGE_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    rereads: int = 2,
    first: P | None = None,
) -> Iterator[P]:
    """Yield every page of a finished job's results in order, proven whole at the end.

    Each page is ``decode(content, url, page)`` of its answer. ``first``, when given, is
    page 1 already read (see :func:`read_status`): it is not asked for again.
    """

    def start(number: int) -> Pending[P]:
        return client.start_page(job.job_id, page=number, page_size=page_size, decode=decode)

    yield from _proven_pages(start, job, page_size, concurrency, rereads, first)


def iter_result_pages(
    client: ApiClient,
    job: JobStatus,
    *,
    page_size: int = MAX_PAGE_SIZE,
    concurrency: int = DEFAULT_CONCURRENCY,
    rereads: int = 2,
) -> Iterator[ResultPage]:
    """Yield every page of a finished job's results in order, as parsed JSON, proven whole."""

    def decode(content: bytes, url: str, page: int) -> ResultPage:
        body = decode_json(content, url)
        return ResultPage.from_response(body, job_id=job.job_id, page=page, page_size=page_size)

    yield from iter_pages(
        client, job, decode, page_size=page_size, concurrency=concurrency, rereads=rereads
    )


def _proven_pages(
    start: Callable[[int], Pending[P]],
    job: JobStatus,
    page_size: int,
    concurrency: int,
    rereads: int,
    first: P | None,
) -> Iterator[P]:
    """Fetch every page with ``start(number)``, check each against the ledger, yield in order."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    ledger = Ledger.for_job(job, page_size)
    expected = ledger.expected
    page_count = max(1, math.ceil(expected / page_size))
    # The response carries no page count: a full last page means one more must be asked for.
    # When the counters say the last page is full, that one is asked for with the others,
    # rather than one round trip after them.
    probe = int(expected > 0 and expected % page_size == 0)

    def fetch(number: int) -> P:
        return start(number).result()

    pages = _pages_in_order(start, page_count + probe, concurrency, first)
    with contextlib.closing(pages):
        last: P | None = None
        for page in itertools.islice(pages, page_count):
            last = _accepted(fetch, page, ledger, rereads)
            yield last
        number = page_count
        while last is not None and len(last.input_indexes()) == page_size:
            number += 1
            probed = next(pages, None)  # the probe, if it was asked for with the others
            last = probed if probed is not None else fetch(number)
            if last.input_indexes():
                yield _accepted(fetch, last, ledger, rereads)
    ledger.prove_whole()


def _pages_in_order(
    start: Callable[[int], Pending[P]], page_count: int, concurrency: int, first: P | None
) -> Generator[P, None, None]:
    """Ask for pages 1..page_count, a window of them at a time, yielding them in page order.

    The requests are in flight in libcurl's one thread (:mod:`batch_export.fetch.curl`); the
    caller of this generator waits for each page in turn and decodes it. With ``first``
    (page 1, read already), the other pages are asked for before it is yielded: the fetching
    is under way while the caller works on page 1.
    """
    begin = 1 if first is None else 2
    if begin > page_count:
        if first is not None:
            yield first
        return
    # Two pages per connection ahead: the connections never wait for the consumer, and
    # memory holds at most that many pages, whatever the size of the job.
    window = 2 * max(1, min(concurrency, page_count - begin + 1))
    pending: dict[int, Pending[P]] = {}
    next_page = begin
    try:
        for number in range(begin - 1 if first is not None else begin, page_count + 1):
            while next_page <= page_count and len(pending) < window:
                pending[next_page] = start(next_page)
                next_page += 1
            yield first if number == 1 and first is not None else pending.pop(number).result()
    finally:
        # Pages not waited for (an error, Ctrl-C, a consumer that stopped) are let go at once.
        for request in pending.values():
            request.cancel()


def _accepted(fetch: Callable[[int], P], page: P, ledger: Ledger, rereads: int) -> P:
    """``page`` recorded by the ledger, read again up to ``rereads`` times while it does not
    fit; then recorded as it is, or the read fails (:meth:`Ledger.accept`)."""
    for _ in range(rereads):
        if not ledger.take(page.page, page.input_indexes()):
            return page
        page = fetch(page.page)
    ledger.accept(page.page, page.input_indexes())
    return page
