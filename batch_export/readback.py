"""Read an export file back into an Arrow table of the item schema: Parquet, CSV or JSONL.

The inverse of the writers (:mod:`batch_export.writers`): CSV's empty field is null and its
quoted ``""`` the empty string, and its JSON-encoded ``links`` become lists again; JSONL is
read with the schema's own types. Paths may be local or any URL fsspec opens. The DataFrame
form is :func:`batch_export.frame.read_export`.

Example:

    >>> import pathlib, tempfile
    >>> from batch_export.schema import COLUMN_NAMES
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "items.jsonl"
    >>> _ = path.write_text('{"job_id": "j1", "input_index": 0, "links": ["https://a.test/"]}\\n')
    >>> table = read_export_table(path)
    >>> table.num_rows, table.column("links").to_pylist(), table.column("url").to_pylist()
    (1, [['https://a.test/']], [None])
"""

from __future__ import annotations

import os
import re
from typing import Any

import fsspec
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from batch_export.errors import InvalidInputError
from batch_export.schema import (
    COLUMN_NAMES,
    ITEM_SCHEMA,
    JOB_METADATA_KEY,
    LIST_COLUMNS,
    TOOL_VERSION_KEY,
)
from batch_export.writers import resolve_format

__all__ = ["PANDAS_ATTRS", "export_format", "read_export_table"]

PANDAS_ATTRS = b"PANDAS_ATTRS"
_HEADER_KEYS = (JOB_METADATA_KEY.encode(), TOOL_VERSION_KEY.encode())
_PANDAS_INDEX = re.compile(r"__index_level_\d+__")


def export_format(path: str | os.PathLike[str], format: str | None = None) -> str:
    """The format of the export at ``path``: ``format`` when given, else its extension's.

    >>> export_format("items.ndjson")
    'jsonl'
    """
    return resolve_format(str(path), format)


def read_export_table(path: str | os.PathLike[str], *, format: str | None = None) -> pa.Table:
    """The export at ``path`` as an Arrow table of :data:`~batch_export.schema.ITEM_SCHEMA`.

    The format comes from ``format`` or the path's extension; a file that is not an export
    of the item schema is an :class:`~batch_export.errors.InvalidInputError`.
    """
    fmt = export_format(path, format)
    try:
        fs, where = fsspec.core.url_to_fs(str(path))
        # pyarrow's CSV and JSON readers need each row within one block, and a scraped page
        # can be megabytes long: one block as big as the file is always enough.
        block_size = min(max(fs.size(where) + 1, 1 << 20), (1 << 31) - 1)
        with fs.open(where, "rb") as handle:
            table = _READERS[fmt](handle, block_size)
    except FileNotFoundError:
        raise InvalidInputError(f"There is no export file at {path}.") from None
    except OSError as error:
        raise InvalidInputError(f"Cannot read {path}: {error.strerror or error}.") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, orjson.JSONDecodeError) as error:
        raise InvalidInputError(
            f"{path} is not a {fmt} export of batch-export's item schema: {error}"
        ) from None
    return _conform(table, path)


def _read_parquet(handle: Any, block_size: int) -> pa.Table:
    # Not pq.read_table: on a Python file object its reader threads can abort the
    # interpreter at exit (seen with pyarrow 18 to 26 here); ParquetFile does not.
    table = pq.ParquetFile(handle).read()
    # A frame saved with DataFrame.to_parquet may carry its index as extra columns.
    return table.drop_columns([name for name in table.column_names if _PANDAS_INDEX.match(name)])


def _read_jsonl(handle: Any, block_size: int) -> pa.Table:
    if not handle.read(1):
        return ITEM_SCHEMA.empty_table()  # an export of an empty job; pyarrow refuses it
    handle.seek(0)
    return pa_json.read_json(
        handle,
        read_options=pa_json.ReadOptions(block_size=block_size),
        parse_options=pa_json.ParseOptions(
            explicit_schema=ITEM_SCHEMA, unexpected_field_behavior="error"
        ),
    )


def _read_csv(handle: Any, block_size: int) -> pa.Table:
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


_READERS = {"parquet": _read_parquet, "csv": _read_csv, "jsonl": _read_jsonl}


def _conform(table: pa.Table, path: str | os.PathLike[str]) -> pa.Table:
    if tuple(table.column_names) != COLUMN_NAMES:
        raise InvalidInputError(
            f"{path} is not an export of batch-export's item schema: expected the columns "
            f"{', '.join(COLUMN_NAMES)}, got {', '.join(table.column_names) or 'none'}."
        )
    try:
        conformed = table.cast(ITEM_SCHEMA)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        raise InvalidInputError(f"{path} has a column of an unexpected type: {error}") from None
    # Kept: the job's header of a Parquet export, and the df.attrs (the job's figures) that
    # DataFrame.to_parquet stores.
    found = table.schema.metadata or {}
    kept = {key: found[key] for key in (PANDAS_ATTRS, *_HEADER_KEYS) if key in found}
    if not kept:
        return conformed
    return conformed.replace_schema_metadata({**(ITEM_SCHEMA.metadata or {}), **kept})
