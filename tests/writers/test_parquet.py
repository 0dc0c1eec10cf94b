from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings

from batch_export.schema import ITEM_SCHEMA
from batch_export.writers.parquet import ParquetWriter
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


@settings(max_examples=40, deadline=None)
@given(row_lists, row_lists)
def test_round_trip(first: list[Row], second: list[Row]) -> None:
    produced = write_with([make_batch(first), make_batch(second)], row_group_rows=3)
    assert open_parquet(produced).read().to_pylist() == first + second
