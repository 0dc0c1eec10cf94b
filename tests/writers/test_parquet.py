from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings

from batch_export.schema import ITEM_SCHEMA
from batch_export.writers.parquet import ParquetWriter, row_bytes
from tests.writers.batches import Row, golden_rows, make_batch, row_lists, write_bytes


def open_parquet(produced: bytes) -> pq.ParquetFile:
    # ParquetFile rather than pq.read_table: with pyarrow 26, read_table on a file with a list
    # column can abort the interpreter at exit ("terminate called without an active exception").
    return pq.ParquetFile(io.BytesIO(produced))


def write_with(batches: list[pa.RecordBatch], **options: int) -> bytes:
    sink = io.BytesIO()
    writer = ParquetWriter(sink, **options)
    for batch in batches:
        writer.write(batch)
    writer.close()
    return sink.getvalue()


def test_golden_rows_read_back_equal_with_the_schema_and_its_metadata() -> None:
    produced = write_bytes("parquet", [make_batch(golden_rows())])
    table = open_parquet(produced).read()
    assert table.to_pylist() == golden_rows()
    assert table.schema.equals(ITEM_SCHEMA)
    assert table.schema.metadata == ITEM_SCHEMA.metadata == {b"batch_export.schema_version": b"1"}
    assert [field.type for field in table.schema] == [field.type for field in ITEM_SCHEMA]
    assert table.schema.field("markdown").type == pa.large_string()


def test_zstd_everywhere() -> None:
    metadata = open_parquet(write_bytes("parquet", [make_batch(golden_rows())])).metadata
    row_group = metadata.row_group(0)
    codecs = {row_group.column(i).compression for i in range(row_group.num_columns)}
    assert codecs == {"ZSTD"}


def test_small_batches_are_gathered_into_row_groups() -> None:
    batch = make_batch([{"input_index": i} for i in range(50)])
    metadata = open_parquet(write_with([batch] * 200)).metadata
    assert (metadata.num_row_groups, metadata.num_rows) == (1, 10_000)


def test_a_row_group_is_written_when_enough_rows_are_pending() -> None:
    batch = make_batch([{"input_index": i} for i in range(5)])
    file = open_parquet(write_with([batch] * 10, row_group_rows=20))
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)]
    assert sizes == [20, 20, 10]
    assert file.read().column("input_index").to_pylist() == list(range(5)) * 10


def test_a_row_group_is_written_when_enough_bytes_are_pending() -> None:
    batch = make_batch([{"markdown": "x" * 1000}] * 5)
    metadata = open_parquet(write_with([batch] * 4, row_group_bytes=2 * batch.nbytes)).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [10, 10]


def test_no_rows_is_a_valid_empty_file() -> None:
    for batches in ([], [make_batch([])]):
        table = open_parquet(write_bytes("parquet", batches)).read()
        assert table.num_rows == 0
        assert table.schema.equals(ITEM_SCHEMA, check_metadata=False)


def test_refuses_bad_thresholds() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ParquetWriter(io.BytesIO(), row_group_rows=0)
    with pytest.raises(ValueError, match="at least 1"):
        ParquetWriter(io.BytesIO(), row_group_bytes=0)


def _varied_rows(count: int) -> list[Row]:
    return [
        {
            "input_index": i,
            "markdown": None if i % 7 == 0 else "m" * (i * 37 % 900),
            "links": None if i % 5 == 0 else ["https://a.example/" + "x" * j for j in range(i % 4)],
            "status": "completed",
        }
        for i in range(count)
    ]


def _batched(batch: pa.RecordBatch, sizes: list[int]) -> list[pa.RecordBatch]:
    pieces: list[pa.RecordBatch] = []
    start = 0
    while start < batch.num_rows:
        size = sizes[len(pieces) % len(sizes)]
        pieces.append(batch.slice(start, size))
        start += size
    return pieces


def test_the_same_rows_give_the_same_bytes_however_they_are_batched() -> None:
    """Row groups end at rows, not at batches: the batches' sizes depend on how fast the pages
    came (the chunks' clock, the joining), the file must not."""
    whole = make_batch(_varied_rows(600))
    options = {"row_group_bytes": 40_000, "row_group_rows": 250}
    produced = {
        sizes: write_with(_batched(whole, list(sizes)), **options)
        for sizes in ((600,), (1,), (50,), (7, 120, 3), (333, 1, 64))
    }
    assert len(set(produced.values())) == 1
    metadata = open_parquet(produced[(600,)]).metadata
    groups = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
    assert len(groups) > 3 and sum(groups) == 600
    assert (
        open_parquet(produced[(1,)]).read().to_pylist() == make_batch(_varied_rows(600)).to_pylist()
    )


def test_a_row_group_ends_at_the_first_row_that_fills_it() -> None:
    batch = make_batch([{"markdown": "x" * 1000}] * 10)
    per_row = int(row_bytes(batch)[1])
    file = open_parquet(write_with([batch], row_group_bytes=3 * per_row - 1))
    sizes = [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)]
    assert sizes == [3, 3, 3, 1]


def test_row_bytes_are_the_rows_own_wherever_they_are_sliced() -> None:
    whole = make_batch(_varied_rows(90))
    ends = row_bytes(whole)
    assert ends[0] == 0 and (ends[1:] > ends[:-1]).all()
    for start, count in ((0, 90), (13, 40), (89, 1), (30, 0)):
        sliced = row_bytes(whole.slice(start, count))
        assert sliced.tolist() == (ends[start : start + count + 1] - ends[start]).tolist()
    joined = pa.concat_batches([whole.slice(0, 45), whole.slice(45)])
    assert row_bytes(joined).tolist() == ends.tolist()


@settings(max_examples=40, deadline=None)
@given(row_lists, row_lists)
def test_round_trip(first: list[Row], second: list[Row]) -> None:
    produced = write_with([make_batch(first), make_batch(second)], row_group_rows=3)
    assert open_parquet(produced).read().to_pylist() == first + second
