from __future__ import annotations

import io
import json

from hypothesis import given, settings

from batch_export.schema import COLUMN_NAMES
from tests.writers.batches import (
    Row,
    check_golden,
    golden_rows,
    make_batch,
    row_lists,
    write_bytes,
)


def test_golden() -> None:
    check_golden("expected.jsonl", write_bytes("jsonl", [make_batch(golden_rows())]))


def test_one_line_per_row_whatever_the_text() -> None:
    produced = write_bytes("jsonl", [make_batch(golden_rows())])
    lines = list(io.BytesIO(produced))
    assert len(lines) == len(golden_rows())
    assert all(line.endswith(b"\n") for line in lines)
    assert [json.loads(line) for line in lines] == golden_rows()


def test_keys_in_schema_order_and_unicode_kept_as_utf8() -> None:
    produced = write_bytes("jsonl", [make_batch(golden_rows()[:1])])
    assert list(json.loads(produced)) == list(COLUMN_NAMES)
    assert "東京".encode() in produced and b"\\u" not in produced


def test_batches_append_and_no_rows_is_an_empty_file() -> None:
    batch = make_batch(golden_rows())
    assert write_bytes("jsonl", [batch, batch]) == write_bytes("jsonl", [batch]) * 2
    assert write_bytes("jsonl", []) == b""
    assert write_bytes("jsonl", [make_batch([])]) == b""


@settings(max_examples=60, deadline=None)
@given(row_lists)
def test_round_trip(written: list[Row]) -> None:
    produced = write_bytes("jsonl", [make_batch(written)])
    assert [json.loads(line) for line in io.BytesIO(produced)] == written
