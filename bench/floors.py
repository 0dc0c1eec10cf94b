"""The floors that batch-export is measured against; each runs in a process of its own.

- ``network``: every page of the job fetched with ``--concurrency`` requests in flight on one
  libcurl multi handle driven by one thread (:class:`CurlFetcher`: the fastest client here,
  and the one batch-export speaks), bodies read whole and discarded. Nothing that processes
  the pages can beat it.
- ``account``: the same for a whole account, the floor of ``batch-export sync``: every page of
  the listing, and every page of every job it lists, ``--concurrency`` at a time on the same
  client. A job's pages are asked for as soon as the listing page naming it is in; the
  listing is parsed (that is how the jobs are known), the job pages are not.
- ``compute``: the job's rows, already in memory as Python objects of the output schema, built
  into an Arrow table and written as zstd Parquet by pyarrow. The pages are fetched and
  parsed before the clock starts.

Each prints one JSON line: the seconds of its timed part and the bytes it handled.

Run as::

    python -m bench.floors network BASE_URL JOB_ID ITEMS --concurrency 8
    python -m bench.floors compute BASE_URL JOB_ID ITEMS --output out.parquet
    python -m bench.floors account BASE_URL --concurrency 8
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pycurl

from bench.jobs import API_KEY, PAGE_SIZE

_HEADERS = [f"X-Api-Key: {API_KEY}", "Accept: application/json"]
_BUFFER_BYTES = 512 * 2**10  # as batch-export's handles (batch_export.fetch.easy)


class CurlFetcher:
    """GETs in flight ``concurrency`` at a time on one ``CurlMulti``, in the calling thread.

    ``get(url, done)`` queues a request; :meth:`run` drives them all (and those that a
    ``done(body)`` queues in turn) until none is left. A status other than 200 or a transfer
    that fails stops the run with an error.
    """

    def __init__(self, concurrency: int) -> None:
        self._multi = pycurl.CurlMulti()
        self._idle = [self._handle() for _ in range(concurrency)]
        self._queue: collections.deque[tuple[str, Callable[[bytes], None]]] = collections.deque()
        self._owners: dict[pycurl.Curl, tuple[str, list[bytes], Callable[[bytes], None]]] = {}
        self.requests = 0

    @staticmethod
    def _handle() -> pycurl.Curl:
        curl = pycurl.Curl()
        curl.setopt(pycurl.HTTPHEADER, _HEADERS)
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.TIMEOUT, 60)
        curl.setopt(pycurl.ACCEPT_ENCODING, "")
        curl.setopt(pycurl.BUFFERSIZE, _BUFFER_BYTES)
        return curl

    def get(self, url: str, done: Callable[[bytes], None]) -> None:
        """Queue a GET of ``url``; ``done(body)`` is called with its body."""
        self._queue.append((url, done))

    def run(self) -> None:
        """Drive every queued request to its end."""
        while self._queue or self._owners:
            while self._queue and self._idle:
                self._start(*self._queue.popleft())
            self._multi.perform()
            if not self._collect() and self._multi.select(1.0) < 0:
                time.sleep(0.001)  # no socket to wait on yet (connecting)

    def _start(self, url: str, done: Callable[[bytes], None]) -> None:
        curl = self._idle.pop()
        chunks: list[bytes] = []
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.WRITEFUNCTION, chunks.append)
        self._owners[curl] = (url, chunks, done)
        self._multi.add_handle(curl)
        self.requests += 1

    def _collect(self) -> int:
        ended = 0
        while True:
            queued, succeeded, failed = self._multi.info_read()
            for curl, code, message in failed:
                raise RuntimeError(f"{self._owners[curl][0]}: libcurl error {code}: {message}")
            for curl in succeeded:
                url, chunks, done = self._owners.pop(curl)
                status = curl.getinfo(pycurl.RESPONSE_CODE)
                self._multi.remove_handle(curl)
                self._idle.append(curl)
                if status != 200:
                    raise RuntimeError(f"{url}: HTTP {status}")
                done(b"".join(chunks))
                ended += 1
            if not queued:
                return ended


def _page_url(base_url: str, path: str, page: int) -> str:
    return f"{base_url}{path}?{urlencode({'page': page, 'page_size': PAGE_SIZE})}"


def fetch_all(base_url: str, job_id: str, items: int, concurrency: int, keep: bool) -> list[Any]:
    """Every page of the job in page order: its body, or only its size when not ``keep``."""
    pages = _pages(items)
    bodies: list[Any] = [None] * len(pages)
    fetcher = CurlFetcher(concurrency)
    for index, page in enumerate(pages):

        def done(body: bytes, index: int = index) -> None:
            bodies[index] = body if keep else len(body)

        fetcher.get(_page_url(base_url, f"/v1/batch/{job_id}", page), done)
    fetcher.run()
    return bodies


def network(base_url: str, job_id: str, items: int, concurrency: int) -> dict[str, Any]:
    """Fetch every page, keep only the byte counts."""
    started = time.perf_counter()
    received = sum(fetch_all(base_url, job_id, items, concurrency, keep=False))
    return {"seconds": time.perf_counter() - started, "bytes": received}


def _pages(items: int) -> range:
    return range(1, max(1, math.ceil(items / PAGE_SIZE)) + 1)


def account(base_url: str, concurrency: int) -> dict[str, Any]:
    """Fetch the listing and every page of every listed job, keep only the byte counts."""
    fetcher = CurlFetcher(concurrency)
    received = 0

    def job_page(body: bytes) -> None:
        nonlocal received
        received += len(body)

    def listing(body: bytes, first: bool = False) -> None:
        nonlocal received
        received += len(body)
        answer = json.loads(body)
        if first:
            for page in range(2, answer["page_count"] + 1):
                fetcher.get(_page_url(base_url, "/v1/batch/jobs", page), listing)
        for job in answer["jobs"]:
            for page in _pages(int(job["accepted_urls"])):
                fetcher.get(_page_url(base_url, f"/v1/batch/{job['job_id']}", page), job_page)

    started = time.perf_counter()
    fetcher.get(_page_url(base_url, "/v1/batch/jobs", 1), lambda body: listing(body, first=True))
    fetcher.run()
    return {
        "seconds": time.perf_counter() - started,
        "bytes": received,
        "requests": fetcher.requests,
    }


def output_row(job_id: str, item: dict[str, Any]) -> dict[str, Any]:
    data = item.get("data") or {}
    metadata = item.get("metadata") or {}
    return {
        "job_id": job_id,
        **{key: item.get(key) for key in ("input_index", "url", "status")},
        **{key: item.get(key) for key in ("error_code", "error_message")},
        **{key: data.get(key) for key in ("markdown", "html", "links")},
        **{key: metadata.get(key) for key in ("http_status", "duration_ms", "retry_count")},
        "tokens_charged": metadata.get("tokens_charged"),
        "extra": None,
    }


def compute(base_url: str, job_id: str, items: int, output: str) -> dict[str, Any]:
    """Build and write the job's rows from memory; only that part is timed."""
    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    from batch_export.schema import ITEM_SCHEMA

    bodies = fetch_all(base_url, job_id, items, 8, keep=True)
    rows = [output_row(job_id, item) for body in bodies for item in orjson.loads(body)["results"]]
    del bodies
    pa.array([0])  # pyarrow imports pandas on its first conversion: not part of the floor
    started = time.perf_counter()
    table = pa.Table.from_pylist(rows, schema=ITEM_SCHEMA)
    pq.write_table(table, output, compression="zstd")
    return {"seconds": time.perf_counter() - started, "bytes": table.nbytes, "rows": len(rows)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    floors = parser.add_subparsers(dest="floor", required=True)
    for name in ("network", "compute", "account"):
        floor = floors.add_parser(name)
        floor.add_argument("base_url")
        if name != "account":
            floor.add_argument("job_id")
            floor.add_argument("items", type=int)
        floor.add_argument("--concurrency", type=int, default=8)
        floor.add_argument("--output", default="/dev/null")
    args = parser.parse_args(argv)
    if args.floor == "network":
        result = network(args.base_url, args.job_id, args.items, args.concurrency)
    elif args.floor == "compute":
        result = compute(args.base_url, args.job_id, args.items, args.output)
    else:
        result = account(args.base_url, args.concurrency)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
