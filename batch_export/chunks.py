"""Scanned pages gathered into chunks and read into Arrow on a few threads, in page order.

The fetching threads only fetch and scan (:mod:`batch_export.scan`); reading into Arrow is
done here, by at most as many threads as the machine has cores (two by default), one chunk
of pages at a time, so that eight connections never mean eight threads fighting over the
GIL, and each read of pyarrow's JSON reader takes megabytes rather than one page. While one
chunk is read, the caller writes the one before it.

Example:

    >>> from batch_export.scan import PageScanner
    >>> scan = PageScanner("j1", page_size=2)
    >>> pages = [scan(b'{"results": [{"input_index": %d}]}' % i, "u", i + 1) for i in range(3)]
    >>> [batch.num_rows for batch in read_in_chunks(pages)]
    [3]
"""

from __future__ import annotations

import itertools
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import pyarrow as pa

from batch_export.flatten import read_bodies
from batch_export.scan import ResultBody

__all__ = ["CHUNK_BYTES", "CHUNK_SECONDS", "DECODE_THREADS", "read_in_chunks"]

# Past a few megabytes a chunk saves no more calls worth having, and a bigger one only waits
# longer for its last page (and holds more memory).
CHUNK_BYTES = 4 << 20
# A chunk is also read once it has gathered pages for this long: when pages come slowly (the
# network is the bottleneck), reading them costs nothing extra, and the last chunk, read after
# the last page came, stays small.
CHUNK_SECONDS = 0.02
# Pages that take the general road are flattened value by value: a few at a time.
_GENERAL_PAGES = 40
DECODE_THREADS = max(1, min(2, os.cpu_count() or 1))


def read_in_chunks(
    pages: Iterable[ResultBody],
    *,
    chunk_bytes: int = CHUNK_BYTES,
    chunk_seconds: float = CHUNK_SECONDS,
    threads: int = DECODE_THREADS,
) -> Iterator[pa.RecordBatch]:
    """The rows of ``pages``, in order, read a chunk at a time by ``threads`` threads.

    A job of one chunk (most jobs of an account) is read in the caller's thread: no thread
    is started for it.
    """
    chunks = _chunked(pages, chunk_bytes, chunk_seconds)
    first = next(chunks, None)
    if first is None:
        return
    second = next(chunks, None)
    if second is None:
        yield read_bodies(first)
        return
    yield from _read_on_threads(itertools.chain([first, second], chunks), threads)


def _chunked(
    pages: Iterable[ResultBody], chunk_bytes: int, chunk_seconds: float
) -> Iterator[list[ResultBody]]:
    """Consecutive pages of one road, about ``chunk_bytes`` or ``chunk_seconds`` worth."""
    chunk: list[ResultBody] = []
    size = 0
    began = 0.0
    for page in pages:
        if chunk and (page.body is None) != (chunk[0].body is None):
            yield chunk
            chunk, size = [], 0
        if not chunk:
            began = time.monotonic()
        chunk.append(page)
        size += len(page.body) if page.body is not None else chunk_bytes // _GENERAL_PAGES
        if size >= chunk_bytes or time.monotonic() - began >= chunk_seconds:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _read_on_threads(chunks: Iterator[list[ResultBody]], threads: int) -> Iterator[pa.RecordBatch]:
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="decode")
    pending: deque[Future[pa.RecordBatch]] = deque()
    interrupted = False
    try:
        for chunk in chunks:
            pending.append(pool.submit(read_bodies, chunk))
            # At most one chunk waits per thread: memory stays a few chunks, whatever the job.
            while len(pending) > threads:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except KeyboardInterrupt:
        interrupted = True
        raise
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
