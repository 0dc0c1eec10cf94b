"""Turn a page of API items into one Arrow record batch of the output schema.

Columns are built one at a time from the page's items (one Python list per column, handed to
pyarrow with its type), not row by row. Missing optional fields become nulls; fields the
schema does not know, at the item level or inside ``data`` or ``metadata``, are kept as JSON in
the ``extra`` column, nested as they came. A value of the wrong type is a
:class:`ResponseShapeError` that names the field, the item and the page.

Example:

    >>> item = {"input_index": 0, "url": "https://a.example/", "status": "completed",
    ...         "data": {"markdown": "# A", "screenshot": None},
    ...         "metadata": {"http_status": 200, "tokens_charged": 1}, "region": "eu"}
    >>> batch = flatten_items("j1", [item])
    >>> batch.num_rows, batch.column("markdown")[0].as_py(), batch.column("extra")[0].as_py()
    (1, '# A', '{"region":"eu","data":{"screenshot":null}}')
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import orjson
import pyarrow as pa

from batch_export.errors import ResponseShapeError
from batch_export.schema import DATA_FIELDS, ITEM_FIELDS, ITEM_SCHEMA, METADATA_FIELDS

__all__ = ["flatten_items"]

_ITEM_KNOWN = frozenset(ITEM_FIELDS)
_DATA_KNOWN = frozenset(DATA_FIELDS)
_METADATA_KNOWN = frozenset(METADATA_FIELDS)
_EMPTY: dict[str, Any] = {}


def flatten_items(
    job_id: str, items: Sequence[dict[str, Any]], *, page: int | None = None
) -> pa.RecordBatch:
    """One record batch of :data:`~batch_export.schema.ITEM_SCHEMA` for ``items``."""
    data = [_section(item, "data", job_id, page) for item in items]
    metadata = [_section(item, "metadata", job_id, page) for item in items]
    values: dict[str, list[Any]] = {
        "job_id": [job_id] * len(items),
        "input_index": [item.get("input_index") for item in items],
        "url": [item.get("url") for item in items],
        "status": [item.get("status") for item in items],
        "error_code": [item.get("error_code") for item in items],
        "error_message": [item.get("error_message") for item in items],
        **{name: [d.get(name) for d in data] for name in DATA_FIELDS},
        **{name: [m.get(name) for m in metadata] for name in METADATA_FIELDS},
        "extra": [_extra(item, d, m) for item, d, m in zip(items, data, metadata, strict=True)],
    }
    columns = [_column(name, values[name], items, job_id, page) for name in ITEM_SCHEMA.names]
    return pa.RecordBatch.from_arrays(columns, schema=ITEM_SCHEMA)


def _section(item: dict[str, Any], name: str, job_id: str, page: int | None) -> dict[str, Any]:
    value = item.get(name)
    if value is None:
        return _EMPTY
    if not isinstance(value, dict):
        raise _shape_error(f"`{name}` to be an object", value, item, job_id, page)
    return value


def _extra(item: dict[str, Any], data: dict[str, Any], metadata: dict[str, Any]) -> str | None:
    unknown = item.keys() - _ITEM_KNOWN
    unknown_data = data.keys() - _DATA_KNOWN
    unknown_metadata = metadata.keys() - _METADATA_KNOWN
    if not (unknown or unknown_data or unknown_metadata):
        return None
    extra: dict[str, Any] = {key: item[key] for key in sorted(unknown)}
    if unknown_data:
        extra["data"] = {key: data[key] for key in sorted(unknown_data)}
    if unknown_metadata:
        extra["metadata"] = {key: metadata[key] for key in sorted(unknown_metadata)}
    try:
        return orjson.dumps(extra, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # integers past 64 bits, which the standard encoder takes
        return json.dumps(extra, ensure_ascii=False, separators=(",", ":"))


def _column(
    name: str, values: list[Any], items: Sequence[dict[str, Any]], job_id: str, page: int | None
) -> pa.Array:
    field = ITEM_SCHEMA.field(name)
    try:
        # pyarrow would take a string as a list of its characters: refuse it first.
        if pa.types.is_list(field.type) and not all(
            value is None or isinstance(value, list) for value in values
        ):
            raise TypeError(name)
        return pa.array(values, type=field.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        position = _first_bad(values, field.type)
        path = name if name not in DATA_FIELDS + METADATA_FIELDS else _qualified(name)
        raise _shape_error(
            f"`{path}` to be {_describe(field.type)}",
            values[position],
            items[position],
            job_id,
            page,
        ) from None


def _first_bad(values: list[Any], arrow_type: pa.DataType) -> int:
    for position, value in enumerate(values):
        if pa.types.is_list(arrow_type) and not (value is None or isinstance(value, list)):
            return position
        try:
            pa.array([value], type=arrow_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
            return position
    return 0


def _qualified(name: str) -> str:
    return f"data.{name}" if name in DATA_FIELDS else f"metadata.{name}"


def _describe(arrow_type: pa.DataType) -> str:
    if pa.types.is_integer(arrow_type):
        return f"an integer that fits {arrow_type}"
    if pa.types.is_list(arrow_type):
        return "a list of strings"
    return "a string"


def _shape_error(
    expected: str, got: object, item: dict[str, Any], job_id: str, page: int | None
) -> ResponseShapeError:
    where = f"item input_index {item.get('input_index')!r} (url {item.get('url')!r})"
    on_page = f" on page {page}" if page is not None else ""
    shown = repr(got)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ResponseShapeError(
        f"Expected {expected} in {where}{on_page} of job {job_id}, got {shown}.",
        job_id=job_id,
        page=page,
        url=item.get("url") if isinstance(item.get("url"), str) else None,
    )
