"""The table of a scrape: every job's export joined back to the input lines, one row a line.

Each batch's job is exported through the one road into a part file (the item schema, as
``batch-export export`` writes it). :func:`batch_table` joins a part to its batch: each item
gets the input line it answers (see :mod:`batch_export.scraping.join`) and the number of
attempts, and each URL the API refused gets a row marked ``invalid``. :func:`lines_table`
keeps, for each line, its row from its last attempt, adds a row for every line that was never
sent (no URL, marked ``invalid`` with the reason), and proves the result: each line exactly
once, from 1 to the last.

Example:

    >>> from batch_export.scraping.inputs import read_urls
    >>> table = lines_table([], read_urls(["", "ftp://x.example/"]))
    >>> table.column("status").to_pylist(), table.column("error_message").to_pylist()
    (['invalid', 'invalid'], ['empty line', "scheme 'ftp' is not http or https"])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from batch_export.codes import may_resubmit
from batch_export.errors import IncompleteResultsError
from batch_export.schema import SCRAPE_INVALID, SCRAPE_SCHEMA
from batch_export.scraping.inputs import UrlInput
from batch_export.scraping.join import BatchJoin
from batch_export.scraping.state import BatchRecord

__all__ = ["INVALID_CODE", "batch_table", "lines_table", "read_part", "resubmittable_lines"]

INVALID_CODE = "INVALID_URL"
_REFUSED = "The API refused this URL as invalid."


def read_part(path: Path) -> pa.Table:
    """A part file (one job's export) read back."""
    return pq.ParquetFile(path).read()


def batch_table(part: pa.Table, batch: BatchRecord, sent: Sequence[str]) -> pa.Table:
    """The rows of one batch, in :data:`SCRAPE_SCHEMA`: its items and its refused URLs."""
    join = BatchJoin(sent, batch.invalid_urls)
    indexes = part.column("input_index").to_pylist()
    urls = part.column("url").to_pylist()
    join.settle(list(zip(indexes, urls, strict=True)))
    positions = [join.position(index, url) for index, url in zip(indexes, urls, strict=True)]
    covered = sorted(positions + join.refused_positions())
    if covered != list(range(len(sent))):
        raise IncompleteResultsError(
            f"Job {batch.job_id} of batch {batch.number} answers {len(positions)} items and "
            f"refused {len(join.refused_positions())} URLs, which is not each of the "
            f"{len(sent)} URLs sent exactly once: rerun later; report the job if it persists.",
            job_id=batch.job_id,
        )
    attempts = batch.round + 1
    items = part.select(SCRAPE_SCHEMA.names[1:-1])
    items = items.add_column(
        0, SCRAPE_SCHEMA.field("line"), pa.array([batch.lines[p] for p in positions], pa.int64())
    )
    items = items.append_column(
        SCRAPE_SCHEMA.field("attempts"), pa.array([attempts] * len(positions), pa.int32())
    )
    refused = [
        _invalid_row(batch.lines[p], sent[p], _REFUSED, job_id=batch.job_id, attempts=attempts)
        for p in join.refused_positions()
    ]
    return pa.concat_tables(
        [items.cast(SCRAPE_SCHEMA), pa.Table.from_pylist(refused, schema=SCRAPE_SCHEMA)]
    )


def _invalid_row(
    line: int, url: str, reason: str, *, job_id: str | None, attempts: int
) -> dict[str, object]:
    return {
        "line": line,
        "job_id": job_id,
        "url": url,
        "status": SCRAPE_INVALID,
        "error_code": INVALID_CODE,
        "error_message": reason,
        "attempts": attempts,
    }


def latest_rows(tables: Iterable[pa.Table]) -> pa.Table:
    """For each line, the row of its last attempt, in line order."""
    table = pa.concat_tables([SCRAPE_SCHEMA.empty_table(), *tables])
    if not table.num_rows:
        return table
    order = pc.sort_indices(table, sort_keys=[("line", "ascending"), ("attempts", "descending")])
    table = table.take(order)
    lines = table.column("line").combine_chunks()
    first = pc.not_equal(lines[1:], lines[:-1]) if len(lines) > 1 else pa.array([], pa.bool_())
    keep = pa.concat_arrays([pa.array([True]), first.cast(pa.bool_())])
    return table.filter(keep)


def lines_table(tables: Iterable[pa.Table], urls: UrlInput) -> pa.Table:
    """The whole table: each input line once, its last attempt, never-sent lines marked."""
    never_sent = [
        _invalid_row(line.line, line.url, line.problem, job_id=None, attempts=0)
        for line in urls.lines
        if line.problem is not None
    ]
    table = latest_rows([*tables, pa.Table.from_pylist(never_sent, schema=SCRAPE_SCHEMA)])
    lines = table.column("line").to_pylist()
    if lines != list(range(1, len(urls.lines) + 1)):
        missing = sorted(set(range(1, len(urls.lines) + 1)) - set(lines))
        raise IncompleteResultsError(
            f"The table would not hold each of the {len(urls.lines):,} input lines once "
            f"({len(missing):,} missing, first {missing[:5]}): rerun the same command."
        )
    return table


def resubmittable_lines(table: pa.Table) -> list[int]:
    """The lines whose last attempt failed with a code worth resubmitting, or was cancelled."""
    lines = table.column("line").to_pylist()
    statuses = table.column("status").to_pylist()
    codes = table.column("error_code").to_pylist()
    return [
        line
        for line, status, code in zip(lines, statuses, codes, strict=True)
        if status == "cancelled" or (status == "failed" and may_resubmit(code) is True)
    ]
