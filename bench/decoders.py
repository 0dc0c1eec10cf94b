"""Ways from a page's JSON bytes to an Arrow record batch, timed on the same pages.

The pages of one job are fetched first (untimed); then each way turns all of them into
record batches of the output schema, once on one thread and once on two threads sharing the
pages (two cores here: a way that holds the GIL gains nothing from the second thread).

- ``json + from_pylist``: ``json.loads``, one dict per row, ``RecordBatch.from_pylist``;
  what a first version would do.
- ``orjson + columns``: ``orjson.loads`` then :func:`batch_export.flatten.items.flatten_items`,
  one Python list per column (batch-export's general road).
- ``orjson + NDJSON + read_json``: parse, write the items back as NDJSON, hand that to
  pyarrow's JSON reader.
- ``read_json on the page``: pyarrow's JSON reader on the page bytes as they came
  (:func:`batch_export.flatten.items.read_page_batch`, batch-export's road for documented pages).

Prints one JSON line: ``{way: {"1 thread": s, "2 threads": s}}``, and the bytes decoded.

Run as::

    python -m bench.decoders BASE_URL JOB_ID ITEMS
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pa_json

from batch_export.flatten.items import flatten_items, read_page_batch
from batch_export.schema import ITEM_SCHEMA
from bench.floors import fetch_all, output_row

Decoder = Callable[[bytes, str], pa.RecordBatch]


def _json_rows(body: bytes, job_id: str) -> pa.RecordBatch:
    rows = [output_row(job_id, item) for item in json.loads(body)["results"]]
    return pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA)


def _orjson_columns(body: bytes, job_id: str) -> pa.RecordBatch:
    return flatten_items(job_id, orjson.loads(body)["results"])


def _ndjson(body: bytes, job_id: str) -> pa.RecordBatch:
    lines = b"\n".join(
        orjson.dumps(output_row(job_id, item)) for item in orjson.loads(body)["results"]
    )
    table = pa_json.read_json(
        pa.BufferReader(lines),
        read_options=pa_json.ReadOptions(use_threads=False, block_size=len(lines) + 1),
        parse_options=pa_json.ParseOptions(explicit_schema=ITEM_SCHEMA),
    )
    return table.combine_chunks().to_batches()[0]


def _read_json(body: bytes, job_id: str) -> pa.RecordBatch:
    read = read_page_batch(body, job_id)
    if read is None:
        raise RuntimeError("the benchmark's pages are documented pages: read_page_batch took none")
    return read[0]


DECODERS: dict[str, Decoder] = {
    "json + from_pylist": _json_rows,
    "orjson + columns": _orjson_columns,
    "orjson + NDJSON + read_json": _ndjson,
    "read_json on the page": _read_json,
}


def _timed(decode: Decoder, bodies: list[bytes], job_id: str, threads: int) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as workers:
        rows = sum(batch.num_rows for batch in workers.map(lambda b: decode(b, job_id), bodies))
    elapsed = time.perf_counter() - started
    if rows == 0:
        raise RuntimeError("no rows decoded")
    return elapsed


def measure(base_url: str, job_id: str, items: int) -> dict[str, Any]:
    """Seconds per way and thread count, after one untimed warm-up page each."""
    bodies = fetch_all(base_url, job_id, items, 8, keep=True)
    results: dict[str, Any] = {"bytes": sum(map(len, bodies)), "pages": len(bodies)}
    for name, decode in DECODERS.items():
        decode(bodies[0], job_id)  # first-call costs (pandas import by pa.array, caches)
        results[name] = {
            f"{threads} thread{'s' if threads > 1 else ''}": _timed(decode, bodies, job_id, threads)
            for threads in (1, 2)
        }
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("job_id")
    parser.add_argument("items", type=int)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.base_url, args.job_id, args.items)))


if __name__ == "__main__":
    main()
