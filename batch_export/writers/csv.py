"""CSV: UTF-8 without a byte order mark, comma-separated, ``\n`` at the end of each line.

How values are written (columns in :data:`~batch_export.schema.ITEM_SCHEMA` order, after a
header line of the column names):

- text is always quoted, with ``"`` doubled inside; numbers never are. So a newline, quote,
  comma or control character in scraped text never breaks the row structure, and every
  CSV reader that follows RFC 4180 (quoted fields may span lines) reads it back.
- null is an empty, unquoted field; an empty string is ``""``. Readers that can tell the
  two apart keep them apart (``pyarrow.csv`` with ``quoted_strings_can_be_null=False``);
  Python's ``csv`` module reads both as ``""``.
- ``links`` is a compact JSON array string (``["https://a","https://b"]``, non-ASCII kept
  as is; ``[]`` for an empty list); decode it with ``json.loads``.

``escape_formulas=True`` neutralises spreadsheet formula injection the way OWASP recommends
(its CSV Injection page and ASVS 5.0 requirement 1.2.10), a little more widely: a text cell
gets a leading ``'``, which spreadsheets take as "this is text", when it begins with

- ``=``, ``+``, ``-`` or ``@`` (OWASP's list), or their full-width forms ``＝ ＋ － ＠``,
  which East Asian spreadsheet locales read as the same operators;
- any of those after leading spaces, tabs, line breaks or NUL characters, which some
  spreadsheets skip before they look for a formula;
- a tab, a carriage return or a NUL character (OWASP's and ASVS's other triggers).

Use it for files that people will open in Excel, LibreOffice or Google Sheets. Leave it off
for files that machines load (databases, pandas, scripts): it changes the values (``-1``
becomes ``'-1``). Numbers and the ``links`` JSON (which starts with ``[``) are never changed.

Example:

    >>> import io, pyarrow as pa
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> batch = pa.RecordBatch.from_pylist(
    ...     [{"job_id": "j1", "input_index": 0, "markdown": "=1+1", "links": ["https://a"]}],
    ...     schema=ITEM_SCHEMA)
    >>> sink = io.BytesIO()
    >>> writer = CsvWriter(sink, escape_formulas=True)
    >>> writer.write(batch)
    >>> writer.close()
    >>> sink.getvalue().decode().splitlines()[1]
    '"j1",0,,,,,"\\'=1+1",,"[""https://a""]",,,,,'
"""

from __future__ import annotations

from typing import BinaryIO

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from batch_export.schema import ITEM_SCHEMA, LIST_COLUMNS
from batch_export.text import encode_json
from batch_export.writers.buffered import BufferedWriter

__all__ = [
    "CHUNK_BYTES",
    "CHUNK_ROWS",
    "FORMULA_PREFIXES",
    "CsvWriter",
    "escape_formula_cells",
    "read_table",
    "to_csv_batch",
]

CHUNK_ROWS = 10_000
CHUNK_BYTES = 8 * 1024 * 1024

# OWASP's list of characters that make a spreadsheet read a cell as a formula.
FORMULA_PREFIXES: tuple[str, ...] = (
    "=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20", "\t", "\r", "\x00",
)  # fmt: skip
# RE2 syntax (pyarrow's): an operator after any leading blanks, or a tab, CR or NUL first.
_FORMULA_PATTERN = r"^(?:[\t\r\x{00}]|[ \t\r\n\x{00}]*[=+\-@\x{FF1D}\x{FF0B}\x{FF0D}\x{FF20}])"


def _csv_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with what CSV holds as text (lists, as JSON arrays) typed as strings."""
    return pa.schema(
        [
            pa.field(field.name, pa.string()) if field.name in LIST_COLUMNS else field
            for field in schema
        ]
    )


_CSV_SCHEMA = _csv_schema(ITEM_SCHEMA)
# "needed" quotes every text value and no number, which is exactly what keeps null ("")
# apart from the empty string ('""'); the csv module cannot do that before Python 3.12.
_WRITE_OPTIONS = pa_csv.WriteOptions(include_header=True, quoting_style="needed")


class CsvWriter(BufferedWriter):
    """Write record batches of the item schema to ``sink`` as CSV.

    Batches are encoded ``chunk_rows`` rows or ``chunk_bytes`` bytes at a time, since each
    encoding step has a fixed cost that one 50-row page would pay over and over. The header
    is there even with no rows.

    Example:

        >>> import io
        >>> sink = io.BytesIO()
        >>> CsvWriter(sink).close()
        >>> sink.getvalue().decode()[:24]
        '"job_id","input_index","'
    """

    format: str = "csv"

    def __init__(
        self,
        sink: BinaryIO,
        *,
        escape_formulas: bool = False,
        chunk_rows: int = CHUNK_ROWS,
        chunk_bytes: int = CHUNK_BYTES,
        schema: pa.Schema = ITEM_SCHEMA,
    ) -> None:
        super().__init__(rows=chunk_rows, nbytes=chunk_bytes, schema=schema)
        self._escape_formulas = escape_formulas
        self._writer = pa_csv.CSVWriter(sink, _csv_schema(schema), write_options=_WRITE_OPTIONS)

    def _write_table(self, table: pa.Table) -> None:
        for batch in table.combine_chunks().to_batches():
            self._writer.write_batch(to_csv_batch(batch, escape_formulas=self._escape_formulas))

    def _finish(self) -> None:
        self._writer.close()


def to_csv_batch(batch: pa.RecordBatch, *, escape_formulas: bool = False) -> pa.RecordBatch:
    """``batch`` with what CSV cannot hold encoded as text: lists as JSON arrays.

    Example:

        >>> from batch_export.schema import ITEM_SCHEMA
        >>> batch = pa.RecordBatch.from_pylist([{"links": ["a", "b"]}], schema=ITEM_SCHEMA)
        >>> to_csv_batch(batch).column("links").to_pylist()
        ['["a","b"]']
    """
    columns = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        if field.name in LIST_COLUMNS:
            column = _json_arrays(column)
        elif escape_formulas and _is_text(field.type):
            column = escape_formula_cells(column)
        columns.append(column)
    schema = _CSV_SCHEMA if batch.schema.equals(ITEM_SCHEMA) else _csv_schema(batch.schema)
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def escape_formula_cells(column: pa.Array) -> pa.Array:
    """Prefix with ``'`` each value that starts with one of :data:`FORMULA_PREFIXES`.

    Example:

        >>> escape_formula_cells(pa.array(["=1+1", "a-b", None, "-2"])).to_pylist()
        ["'=1+1", 'a-b', None, "'-2"]
    """
    starts_like_formula = pc.match_substring_regex(column, _FORMULA_PATTERN)
    if not pc.any(starts_like_formula).as_py():
        return column
    # Escape only the matching cells: rewriting every cell costs a copy of all the text.
    matching = column.take(pc.indices_nonzero(starts_like_formula))
    escaped = pc.binary_join_element_wise(
        pa.scalar("'", column.type), matching, pa.scalar("", column.type)
    )
    return pc.replace_with_mask(column, starts_like_formula, escaped)


def _is_text(type_: pa.DataType) -> bool:
    return bool(pa.types.is_string(type_) or pa.types.is_large_string(type_))


def _json_arrays(column: pa.Array) -> pa.Array:
    if column.null_count == len(column):
        return pa.nulls(len(column), pa.string())
    return pa.array(
        [
            None if links is None else encode_json(links).decode("utf-8")
            for links in column.to_pylist()
        ],
        pa.string(),
    )


def read_table(handle: BinaryIO, block_size: int) -> pa.Table:
    """A CSV export read back; ``block_size`` must hold the longest row."""
    # links is JSON text in CSV, decoded below; every other column reads as its own type.
    types = {field.name: field.type for field in ITEM_SCHEMA if field.name not in LIST_COLUMNS}
    table = pa_csv.read_csv(
        handle,
        read_options=pa_csv.ReadOptions(block_size=block_size),
        parse_options=pa_csv.ParseOptions(newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            column_types=types | {name: pa.string() for name in LIST_COLUMNS},
            # The CSV encoding: an empty field is null, a quoted "" the empty string.
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    for name in LIST_COLUMNS:
        if name in table.column_names:
            position = table.column_names.index(name)
            field = ITEM_SCHEMA.field(name)
            table = table.set_column(position, field, _decoded(table.column(name), field.type))
    return table


def _decoded(column: pa.ChunkedArray, type: pa.DataType) -> pa.Array:
    """A column of JSON texts as the values they encode; pyarrow checks them against ``type``."""
    return pa.array(
        [None if text is None else orjson.loads(text) for text in column.to_pylist()], type=type
    )
