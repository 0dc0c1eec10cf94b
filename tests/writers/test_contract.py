"""What every writer of the registry promises, checked for each entry: a new format gets
these tests by adding its line to ``batch_export.writers.REGISTRY``."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings

from batch_export.writers import REGISTRY, Writer, WriterFormat, open_writer
from batch_export.writers.readback import read_export_table
from tests.writers.batches import Row, golden_rows, make_batch, row_lists, write_bytes

ENTRIES = {entry.name: entry for entry in REGISTRY}


@pytest.fixture(params=list(ENTRIES))
def entry(request: pytest.FixtureRequest) -> WriterFormat:
    found: WriterFormat = ENTRIES[request.param]
    return found


def test_the_writer_follows_the_protocol_and_names_its_format(entry: WriterFormat) -> None:
    writer = open_writer(entry.name, io.BytesIO())
    assert isinstance(writer, Writer)
    assert writer.format == entry.name
    assert entry.extensions and all(ext.startswith(".") for ext in entry.extensions)


def test_refuses_a_batch_of_another_schema_and_writes_after_close(entry: WriterFormat) -> None:
    writer = open_writer(entry.name, io.BytesIO())
    with pytest.raises(ValueError, match="Expected a batch of ITEM_SCHEMA"):
        writer.write(make_batch([{}]).select(["job_id"]))
    writer.close()
    writer.close()  # closing twice is harmless
    with pytest.raises(ValueError, match="after close"):
        writer.write(make_batch([{}]))


def test_the_sink_stays_open_for_its_owner(entry: WriterFormat) -> None:
    sink = io.BytesIO()
    writer = open_writer(entry.name, sink)
    writer.write(make_batch(golden_rows()))
    writer.close()
    assert not sink.closed and sink.getvalue()


def test_how_rows_are_split_into_batches_does_not_change_the_bytes(entry: WriterFormat) -> None:
    rows = golden_rows()
    whole = write_bytes(entry.name, [make_batch(rows)])
    split = write_bytes(entry.name, [make_batch(rows[:1]), make_batch([]), make_batch(rows[1:])])
    assert split == whole


def test_no_rows_is_a_file_that_reads_back_empty(entry: WriterFormat, tmp_path: Path) -> None:
    path = _written(entry, [], tmp_path)
    assert read_export_table(path).num_rows == 0


@settings(max_examples=30, deadline=None)
@given(rows=row_lists)
def test_rows_read_back_as_written(rows: list[Row]) -> None:
    for entry in REGISTRY:
        table = read_export_table(_written(entry, rows, Path(tempfile.mkdtemp())))
        assert table.to_pylist() == rows, entry.name


def _written(entry: WriterFormat, rows: list[Row], folder: Path) -> Path:
    path = folder / f"out{entry.extensions[0]}"
    path.write_bytes(write_bytes(entry.name, [make_batch(rows)]))
    return path
