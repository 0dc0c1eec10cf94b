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

import fsspec
import orjson
import pyarrow as pa

from batch_export.errors import InvalidInputError, ResponseShapeError
from batch_export.job import JobStatus
from batch_export.schema import (
    COLUMN_NAMES,
    ITEM_SCHEMA,
    JOB_METADATA_KEY,
    TOOL_VERSION_KEY,
)
from batch_export.text import MAX_DEPTH, JsonTooDeep, NotJson, read_json
from batch_export.writers import resolve_format, writer_format

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
            table = writer_format(fmt).read(handle, block_size)
    except FileNotFoundError:
        raise InvalidInputError(f"There is no export file at {path}.") from None
    except OSError as error:
        raise InvalidInputError(f"Cannot read {path}: {error.strerror or error}.") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, orjson.JSONDecodeError) as error:
        raise InvalidInputError(
            f"{path} is not a {fmt} export of batch-export's item schema: {error}"
        ) from None
    return _conform(table, path)


def _conform(table: pa.Table, path: str | os.PathLike[str]) -> pa.Table:
    # A frame saved with DataFrame.to_parquet may carry its index as extra columns.
    table = table.drop_columns([name for name in table.column_names if _PANDAS_INDEX.match(name)])
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
    for key in (PANDAS_ATTRS, JOB_METADATA_KEY.encode()):
        if key in kept:
            _check_saved_json(kept[key], key.decode(), path)
    return conformed.replace_schema_metadata({**(ITEM_SCHEMA.metadata or {}), **kept})


def _check_saved_json(raw: bytes, name: str, path: str | os.PathLike[str]) -> None:
    """Refuse saved JSON that the readers after us could not take: a file is untrusted input.

    The job's header (and the job figures in a frame's attrs) must be JSON nested at most
    :data:`~batch_export.text.MAX_DEPTH` levels deep, with each figure of its type; checked
    here, without recursion, before ``json.loads`` or a summary reads them.
    """
    try:
        value = read_json(raw).value
        for figures in _job_figures(value, name):
            JobStatus.from_figures(figures)
    except JsonTooDeep:
        problem = f"nests deeper than {MAX_DEPTH} levels"
    except NotJson:
        problem = "is not JSON"
    except ResponseShapeError as error:
        problem = "does not fit: " + error.message[:1].lower() + error.message[1:].rstrip(".")
    except TypeError:
        problem = "is not a JSON object"
    else:
        return
    raise InvalidInputError(
        f"{path} is not an export that batch-export can read: its `{name}` metadata {problem}."
    )


def _job_figures(value: object, name: str) -> list[object]:
    """The job figures in a file's saved JSON: the header itself, or those in a frame's attrs."""
    if name == JOB_METADATA_KEY:
        return [value]
    if not isinstance(value, dict):
        raise TypeError(name)  # a frame's attrs are an object
    jobs = value.get("jobs")
    found = [value["job"]] if isinstance(value.get("job"), dict) else []
    return found + (list(jobs.values()) if isinstance(jobs, dict) else [])
