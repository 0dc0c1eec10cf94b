"""Scanned pages gathered into chunks and read into Arrow a chunk at a time, in page order.

The fetching threads only fetch and scan (:mod:`batch_export.flatten.scan`); reading into Arrow is
done here, in the caller's thread, one chunk of pages at a time, so that eight connections
never mean eight threads fighting over the GIL, and each read of pyarrow's JSON reader takes
a megabyte rather than one page. The caller's writer has a thread of its own
(:mod:`batch_export.writers.handoff`) for jobs big enough to gain from one.

A chunk is a megabyte: measured on a 100,000-item export, 4 MB chunks read on two threads
were no faster than 1 MB chunks read in the caller's thread, and held 55 MB more at the peak.

Example:

    >>> from batch_export.flatten.scan import PageScanner
    >>> scan = PageScanner("j1", page_size=2)
    >>> pages = [scan(b'{"results": [{"input_index": %d}]}' % i, "u", i + 1) for i in range(3)]
    >>> [batch.num_rows for batch in read_in_chunks(pages)]
    [3]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa

from batch_export.flatten.items import read_bodies
from batch_export.flatten.scan import ResultBody

__all__ = ["CHUNK_BYTES", "CHUNK_SECONDS", "read_in_chunks"]

# Past a megabyte a chunk saves no more calls worth having, and a bigger one only waits
# longer for its last page (and holds more memory while it is read).
CHUNK_BYTES = 1 << 20
# A chunk is also read once it has gathered pages for this long: when pages come slowly (the
# network is the bottleneck), reading them costs nothing extra, and the last chunk, read after
# the last page came, stays small.
CHUNK_SECONDS = 0.02
# Pages that take the general road are flattened value by value: a few at a time.
_GENERAL_PAGES = 40


def read_in_chunks(
    pages: Iterable[ResultBody],
    *,
    chunk_bytes: int = CHUNK_BYTES,
    chunk_seconds: float = CHUNK_SECONDS,
    on_changed: Callable[[int], None] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The rows of ``pages``, in order, read a chunk at a time.

    ``on_changed`` is told how many values of the items had to change to be held, when some
    did (see :func:`batch_export.flatten.items.read_bodies`).
    """
    for chunk in _chunked(pages, chunk_bytes, chunk_seconds):
        yield read_bodies(chunk, on_changed=on_changed)


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
