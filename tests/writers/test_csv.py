from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from hypothesis import given, settings

from batch_export.schema import COLUMN_NAMES, ITEM_SCHEMA, LIST_COLUMNS
from batch_export.writers.csv import FORMULA_PREFIXES, CsvWriter, escape_formula_cells
from tests.writers.batches import Row, check_golden, golden_rows, make_batch, row_lists, write_bytes

TEXT_COLUMNS = [
    field.name
    for field in ITEM_SCHEMA
    if field.name not in LIST_COLUMNS
    and (pa.types.is_string(field.type) or pa.types.is_large_string(field.type))
]
HEADER = ",".join(f'"{name}"' for name in COLUMN_NAMES) + "\n"


def read_with_csv_module(produced: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(produced.decode("utf-8"), newline="")))


def read_with_arrow(produced: bytes) -> list[Row]:
    """Read back with nulls and empty strings kept apart, links decoded from JSON."""
    types = {
        field.name: pa.string() if field.name in LIST_COLUMNS else field.type
        for field in ITEM_SCHEMA
    }
    table = pa_csv.read_csv(
        io.BytesIO(produced),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )
    read: list[Row] = table.to_pylist()
    for row in read:
        row["links"] = None if row["links"] is None else json.loads(row["links"])
    return read


def escaped(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip(" \t\r\n\x00").startswith(FORMULA_PREFIXES[:8]):
        return "'" + value
    if isinstance(value, str) and value.startswith(("\t", "\r", "\x00")):
        return "'" + value
    return value


@pytest.mark.parametrize(
    ("name", "options"),
    [("expected.csv", {}), ("expected.escaped.csv", {"escape_formulas": True})],
)
def test_golden(name: str, options: dict[str, bool]) -> None:
    check_golden(name, write_bytes("csv", [make_batch(golden_rows())], **options))


def test_null_is_an_empty_field_and_empty_text_is_quoted() -> None:
    rows = golden_rows()
    produced = write_bytes("csv", [make_batch([rows[2], rows[6]])]).decode()
    assert produced.split("\n")[1:] == [
        '"9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019",2,"https://example.com/empty","completed",'
        '"","","","","[]",204,0,0,1,""',
        '"9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019",6,,,,,,,,,,,,',
        "",
    ]


def test_links_are_compact_json_with_unicode_kept() -> None:
    produced = write_bytes("csv", [make_batch(golden_rows()[:1])]).decode()
    assert '"[""https://quotes.toscrape.com/page/2/"",""https://example.org/ünïcode?a=1,2""]"' in (
        produced
    )


def test_header_only_when_there_are_no_rows() -> None:
    assert write_bytes("csv", []).decode() == HEADER
    assert write_bytes("csv", [make_batch([])]).decode() == HEADER


def test_rows_survive_the_csv_module_and_arrow() -> None:
    produced = write_bytes("csv", [make_batch(golden_rows())])
    table = read_with_csv_module(produced)
    assert table[0] == list(COLUMN_NAMES)
    assert len(table) == 1 + len(golden_rows())
    assert read_with_arrow(produced) == golden_rows()


def test_chunking_does_not_change_the_bytes() -> None:
    rows = golden_rows()
    batches = [make_batch(rows[:3]), make_batch(rows[3:]), make_batch(rows)]
    whole = write_bytes("csv", batches)
    sink = io.BytesIO()
    writer = CsvWriter(sink, chunk_rows=1)
    for batch in batches:
        writer.write(batch)
    writer.close()
    assert sink.getvalue() == whole
    assert read_with_arrow(whole) == rows + rows


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
@pytest.mark.parametrize("type_", [pa.string(), pa.large_string()])
def test_escape_formula_cells(prefix: str, type_: pa.DataType) -> None:
    column = pa.array([f"{prefix}1+1", f"a{prefix}b", "", None, "'x", "a =1"], type_)
    result = escape_formula_cells(column)
    assert result.type == type_
    assert result.to_pylist() == [f"'{prefix}1+1", f"a{prefix}b", "", None, "'x", "a =1"]


@pytest.mark.parametrize(
    "value", [" =1+1", "\n=HYPERLINK(1)", "  \t@SUM(A1)", "\x00-2", "\r\n+3", " \uff1d1"]
)
def test_formulas_after_leading_blanks_are_escaped(value: str) -> None:
    assert escape_formula_cells(pa.array([value])).to_pylist() == ["'" + value]


@pytest.mark.parametrize("value", [" a=1", "1-2", "e@mail", " ", "\n"])
def test_text_that_is_no_formula_is_left_alone(value: str) -> None:
    assert escape_formula_cells(pa.array([value])).to_pylist() == [value]


def test_escape_formulas_leaves_numbers_and_links_alone() -> None:
    row = {"input_index": -1, "tokens_charged": -5, "links": ["=1+1"], "markdown": "-5"}
    produced = write_bytes("csv", [make_batch([row])], escape_formulas=True).decode()
    assert produced.splitlines()[1] == ',-1,,,,,"\'-5",,"[""=1+1""]",,,,-5,'


@settings(max_examples=60, deadline=None)
@given(row_lists)
def test_round_trip(written: list[Row]) -> None:
    produced = write_bytes("csv", [make_batch(written)])
    assert read_with_arrow(produced) == written
    header, *table = read_with_csv_module(produced)
    assert header == list(COLUMN_NAMES)
    assert len(table) == len(written)
    # The csv module reads null and "" alike; it must still see every row and field.
    for row, fields in zip(written, table, strict=True):
        assert len(fields) == len(COLUMN_NAMES)
        for name, field in zip(COLUMN_NAMES, fields, strict=True):
            value = row[name]
            if value is None:
                assert field == ""
            elif name in LIST_COLUMNS:
                assert json.loads(field) == value
            else:
                assert field == str(value)


@settings(max_examples=60, deadline=None)
@given(row_lists)
def test_round_trip_with_escaped_formulas(written: list[Row]) -> None:
    produced = write_bytes("csv", [make_batch(written)], escape_formulas=True)
    expected = [
        {name: value if name not in TEXT_COLUMNS else escaped(value) for name, value in row.items()}
        for row in written
    ]
    assert read_with_arrow(produced) == expected
