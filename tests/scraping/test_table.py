"""The table in line order, a first-round batch at a time: each line once, its last attempt."""

from __future__ import annotations

import pyarrow as pa
import pytest

from batch_export.errors import IncompleteResultsError
from batch_export.schema import SCRAPE_SCHEMA
from batch_export.scraping.inputs import read_urls
from batch_export.scraping.table import latest_rows, lines_tables

# Lines 1, 4 and 7 are no URL; batches of two: lines (2, 3), (5, 6), (8,).
URLS = read_urls(
    ["", "https://a/", "https://b/", "x", "https://c/", "https://d/", "", "https://e/"]
)


def rows(lines: list[int], status: str, attempts: int = 1) -> pa.Table:
    data = [{"line": n, "status": status, "attempts": attempts, "tokens_charged": 1} for n in lines]
    return pa.Table.from_pylist(data, schema=SCRAPE_SCHEMA)


def test_chunks_follow_the_lines_with_later_attempts_and_invalid_lines_in_place() -> None:
    first = [(3, rows([2, 3], "failed")), (6, rows([5, 6], "completed")), (8, rows([8], "failed"))]
    later = latest_rows([rows([3, 8], "failed", 2), rows([8], "completed", 3)])
    chunks = list(lines_tables(iter(first), later, URLS))
    assert [chunk.column("line").to_pylist() for chunk in chunks] == [
        [1, 2, 3], [4, 5, 6], [7, 8]
    ]  # fmt: skip
    table = pa.concat_tables(chunks)
    assert table.column("status").to_pylist() == [
        "invalid", "failed", "failed", "invalid", "completed", "completed", "invalid", "completed"
    ]  # fmt: skip
    assert table.column("attempts").to_pylist() == [0, 1, 2, 0, 1, 1, 0, 3]


def test_a_line_that_no_batch_answers_is_refused() -> None:
    first = [(3, rows([2], "completed")), (6, rows([5, 6], "completed")), (8, rows([8], "failed"))]
    empty = SCRAPE_SCHEMA.empty_table()
    with pytest.raises(IncompleteResultsError, match=r"1 missing, first \[3\]"):
        list(lines_tables(iter(first), empty, URLS))
