"""The floors that batch-export is measured against; each runs in a process of its own.

- ``network``: every page of the job fetched with ``--concurrency`` threads over one
  keep-alive urllib3 pool (the HTTP layer under requests, the fastest plain client here),
  bodies read whole and discarded. Nothing that processes the pages can beat it.
- ``account``: the same for a whole account, the floor of ``batch-export sync``: every page of
  the listing, and every page of every job it lists, on one pool of ``--concurrency``
  connections. A job's pages are asked for as soon as the listing page naming it is in; the
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
import json
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any

import urllib3

from bench.jobs import API_KEY, PAGE_SIZE

_HEADERS = {"X-Api-Key": API_KEY, "Accept": "application/json"}


def fetch_all(base_url: str, job_id: str, items: int, concurrency: int, keep: bool) -> list[Any]:
    """Every page of the job in page order: its body, or only its size when not ``keep``."""
    pool = urllib3.PoolManager(maxsize=concurrency, retries=False, timeout=60.0)

    def fetch(page: int) -> bytes | int:
        response = pool.request(
            "GET",
            f"{base_url}/v1/batch/{job_id}",
            fields={"page": page, "page_size": PAGE_SIZE},
            headers=_HEADERS,
        )
        if response.status != 200:
            raise RuntimeError(f"page {page} of {job_id}: HTTP {response.status}")
        return response.data if keep else len(response.data)

    with ThreadPoolExecutor(max_workers=concurrency) as workers:
        return list(workers.map(fetch, _pages(items)))


def network(base_url: str, job_id: str, items: int, concurrency: int) -> dict[str, Any]:
    """Fetch every page, keep only the byte counts."""
    started = time.perf_counter()
    received = sum(fetch_all(base_url, job_id, items, concurrency, keep=False))
    return {"seconds": time.perf_counter() - started, "bytes": received}


def _pages(items: int) -> range:
    return range(1, max(1, math.ceil(items / PAGE_SIZE)) + 1)


def account(base_url: str, concurrency: int) -> dict[str, Any]:
    """Fetch the listing and every page of every listed job, keep only the byte counts."""
    pool = urllib3.PoolManager(maxsize=concurrency, retries=False, timeout=60.0)

    def fetch(path: str, page: int) -> bytes:
        response = pool.request(
            "GET", f"{base_url}{path}", fields={"page": page, "page_size": PAGE_SIZE},
            headers=_HEADERS,
        )  # fmt: skip
        if response.status != 200:
            raise RuntimeError(f"page {page} of {path}: HTTP {response.status}")
        return response.data

    def size(path: str, page: int) -> int:
        return len(fetch(path, page))

    def job_pages(workers: ThreadPoolExecutor, listing: bytes) -> list[Future[int]]:
        return [
            workers.submit(size, f"/v1/batch/{job['job_id']}", page)
            for job in json.loads(listing)["jobs"]
            for page in _pages(int(job["accepted_urls"]))
        ]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as workers:
        first = fetch("/v1/batch/jobs", 1)
        listings = [
            workers.submit(fetch, "/v1/batch/jobs", page)
            for page in range(2, json.loads(first)["page_count"] + 1)
        ]
        pages = job_pages(workers, first)
        for listing in as_completed(listings):
            pages += job_pages(workers, listing.result())
        received = len(first) + sum(len(listing.result()) for listing in listings)
        received += sum(page.result() for page in pages)
    return {
        "seconds": time.perf_counter() - started,
        "bytes": received,
        "requests": 1 + len(listings) + len(pages),
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
