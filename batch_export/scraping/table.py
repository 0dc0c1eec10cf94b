"""The table of a scrape: every job's export joined back to the input lines, one row a line.

Each batch's job is exported through the one road into a part file (the item schema, as
``batch-export export`` writes it). :func:`batch_table` joins a part to its batch: each item
gets the input line it answers (see :mod:`batch_export.scraping.join`) and the number of
attempts, and each URL the API refused gets a row marked ``invalid``. :func:`lines_tables`
keeps, for each line, its row from its last attempt, adds a row for every line that was never
sent (no URL, marked ``invalid`` with the reason), and proves the result: each line exactly
once, from 1 to the last. It goes one first-round batch at a time, so that the table is
written in line order without being held whole (only the resubmitted lines' rows are).

Example:

    >>> from batch_export.scraping.inputs import read_urls
    >>> table = lines_table([], read_urls(["", "ftp://x.example/"]))
    >>> table.column("status").to_pylist(), table.column("error_message").to_pylist()
    (['invalid', 'invalid'], ['empty line', "scheme 'ftp' is not http or https"])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
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

__all__ = [
    "INVALID_CODE",
    "ITEM_COLUMNS",
    "STATUS_COLUMNS",
    "batch_table",
    "latest_rows",
    "lines_table",
    "lines_tables",
    "never_sent",
    "read_part",
    "resubmittable_lines",
    "scrape_schema",
]

INVALID_CODE = "INVALID_URL"
_REFUSED = "The API refused this URL as invalid."


ITEM_COLUMNS: tuple[str, ...] = tuple(SCRAPE_SCHEMA.names[1:-1])
# What the resubmission plan needs of each row: a light read of the parts.
STATUS_COLUMNS: tuple[str, ...] = ("input_index", "url", "status", "error_code")


def read_part(path: Path, columns: Sequence[str] = ITEM_COLUMNS) -> pa.Table:
    """A part file (one job's export) read back, only ``columns``."""
    return pq.ParquetFile(path).read(columns=list(columns))


def scrape_schema(columns: Sequence[str] = ITEM_COLUMNS) -> pa.Schema:
    """:data:`SCRAPE_SCHEMA` with only ``columns`` of the items between line and attempts."""
    fields = [SCRAPE_SCHEMA.field(name) for name in ("line", *columns, "attempts")]
    return pa.schema(fields, metadata=SCRAPE_SCHEMA.metadata)


def batch_table(
    part: pa.Table, batch: BatchRecord, sent: Sequence[str], columns: Sequence[str] = ITEM_COLUMNS
) -> pa.Table:
    """The rows of one batch (its items, then its refused URLs), in :func:`scrape_schema`."""
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
    schema, attempts = scrape_schema(columns), batch.round + 1
    items = part.select(list(columns))
    lines = pa.array([batch.lines[p] for p in positions], pa.int64())
    items = items.add_column(0, schema.field("line"), lines)
    items = items.append_column(
        schema.field("attempts"), pa.array([attempts] * len(positions), pa.int32())
    )
    refused = [
        _invalid_row(batch.lines[p], sent[p], _REFUSED, job_id=batch.job_id, attempts=attempts)
        for p in join.refused_positions()
    ]
    return pa.concat_tables([items.cast(schema), pa.Table.from_pylist(refused, schema=schema)])


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


def latest_rows(tables: Iterable[pa.Table], schema: pa.Schema = SCRAPE_SCHEMA) -> pa.Table:
    """For each line, the row of its last attempt, in line order."""
    table = pa.concat_tables([schema.empty_table(), *tables])
    if not table.num_rows:
        return table
    order = pc.sort_indices(table, sort_keys=[("line", "ascending"), ("attempts", "descending")])
    table = table.take(order)
    lines = table.column("line").combine_chunks()
    first = pc.not_equal(lines[1:], lines[:-1]) if len(lines) > 1 else pa.array([], pa.bool_())
    keep = pa.concat_arrays([pa.array([True]), first.cast(pa.bool_())])
    return table.filter(keep)


def never_sent(urls: UrlInput) -> pa.Table:
    """A row for each line that is no URL: marked invalid, with the reason."""
    rows = [
        _invalid_row(line.line, line.url, line.problem, job_id=None, attempts=0)
        for line in urls.lines
        if line.problem is not None
    ]
    return pa.Table.from_pylist(rows, schema=SCRAPE_SCHEMA)


def lines_tables(
    first_round: Iterable[tuple[int, pa.Table]], later: pa.Table, urls: UrlInput
) -> Iterator[pa.Table]:
    """The table in line order, a chunk a first-round batch, each line proven once.

    ``first_round``: each first-round batch's last line and rows, in order (their lines
    follow one another); ``later``: the last row of each line resubmitted since. Only one
    batch's rows are held at a time, beside the resubmitted ones.
    """
    pending = latest_rows([never_sent(urls)])
    start, total = 1, len(urls.lines)
    for last, rows in [*first_round, (total, SCRAPE_SCHEMA.empty_table())]:
        if last < start:
            continue
        chunk = [rows] + [_between(table, start, last) for table in (later, pending)]
        table = latest_rows(chunk)
        _check_lines(table, start, last, total)
        start = last + 1
        yield table


def _between(table: pa.Table, first: int, last: int) -> pa.Table:
    line = table.column("line")
    return table.filter(pc.and_(pc.greater_equal(line, first), pc.less_equal(line, last)))


def _check_lines(table: pa.Table, first: int, last: int, total: int) -> None:
    lines = table.column("line").to_pylist()
    if lines != list(range(first, last + 1)):
        missing = sorted(set(range(first, last + 1)) - set(lines))
        raise IncompleteResultsError(
            f"The table would not hold each of the {total:,} input lines once "
            f"({len(missing):,} missing, first {missing[:5]}): rerun the same command."
        )


def lines_table(tables: Iterable[pa.Table], urls: UrlInput) -> pa.Table:
    """The whole table at once (for small inputs and tests): each line once, in order."""
    table = latest_rows([*tables, never_sent(urls)])
    _check_lines(table, 1, len(urls.lines), len(urls.lines))
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
