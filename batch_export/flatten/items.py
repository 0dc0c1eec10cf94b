"""Turn a page of API items into one Arrow record batch of the output schema.

Two roads lead to the same batch. The **chunked road**, :func:`read_pages`, hands the raw
JSON bytes of many pages at once to pyarrow's own JSON reader, which builds the columns in
C++ without making a Python object per value, and without holding the GIL; one call for
megabytes of pages, rather than one per 50-item page, each with its own setup. It takes only
pages that the scan (:mod:`batch_export.flatten.scan`) found documented, and values of the
documented types. Any other page takes the **general road**: :func:`flatten_items` builds the
batch from the parsed items, column by column. Both give the same rows for the pages both take (the
tests hold them to it). :func:`read_bodies` takes consecutive pages by whichever road fits.

In :func:`flatten_items`, missing optional fields become nulls; fields the schema does not
know, at the item level or inside ``data`` or ``metadata``, are kept as JSON in the ``extra``
column, nested as they came. A value of the wrong type is a :class:`ResponseShapeError` that
names the field, the item and the page.

Example:

    >>> item = {"input_index": 0, "url": "https://a.example/", "status": "completed",
    ...         "data": {"markdown": "# A", "screenshot": None},
    ...         "metadata": {"http_status": 200, "tokens_charged": 1}, "region": "eu"}
    >>> batch = flatten_items("j1", [item])
    >>> batch.num_rows, batch.column("markdown")[0].as_py(), batch.column("extra")[0].as_py()
    (1, '# A', '{"region":"eu","data":{"screenshot":null}}')
    >>> page = b'{"status": "completed", "results": [{"input_index": 0, "url": "https://a.example/"}]}'
    >>> batch, indexes = read_page_batch(page, "j1")
    >>> batch.column("url")[0].as_py(), indexes
    ('https://a.example/', [0])
    >>> read_page_batch(b'{"results": [{"input_index": 0, "region": "eu"}]}', "j1") is None
    True
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json

from batch_export.batches import string_array
from batch_export.errors import ResponseShapeError
from batch_export.flatten.scan import ResultBody, scan_indexes
from batch_export.job import ResultPage, decode_json
from batch_export.schema import DATA_FIELDS, ITEM_FIELDS, ITEM_SCHEMA, METADATA_FIELDS
from batch_export.text import encode_json, shown

__all__ = ["PAGE_POOL", "flatten_items", "read_bodies", "read_page_batch", "read_pages"]

_ITEM_KNOWN = frozenset(ITEM_FIELDS)
_DATA_KNOWN = frozenset(DATA_FIELDS)
_METADATA_KNOWN = frozenset(METADATA_FIELDS)
_EMPTY: dict[str, Any] = {}

# What the results of a page must look like for pyarrow's reader: every documented item
# field with its output type, nested as the API nests it. The page's other fields were
# checked by the scan (batch_export.flatten.scan) and are skipped here.
_DIRECT_FIELDS = tuple(name for name in ITEM_FIELDS if name not in ("data", "metadata"))
_ITEM_TYPE = pa.struct(
    [
        *(ITEM_SCHEMA.field(name) for name in _DIRECT_FIELDS),
        pa.field("data", pa.struct([ITEM_SCHEMA.field(name) for name in DATA_FIELDS])),
        pa.field("metadata", pa.struct([ITEM_SCHEMA.field(name) for name in METADATA_FIELDS])),
    ]
)
_RESULTS_TYPE = pa.list_(_ITEM_TYPE)
_PAGE_SCHEMA = pa.schema([pa.field("results", _RESULTS_TYPE)])
_PARSE_OPTIONS = pa_json.ParseOptions(
    explicit_schema=_PAGE_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=False
)
_BOM = b"\xef\xbb\xbf"
_MAX_BLOCK = (1 << 31) - 1  # pyarrow reads a page as one block, whose size is an int32


def _page_pool() -> pa.MemoryPool:
    """The pool that pages are read into (from the fetching threads) and joined in.

    pyarrow's default, mimalloc, keeps a heap per thread: with eight threads reading pages
    it held 40 MB more at the peak of a 1,000-item export than jemalloc or the C library's
    malloc, and as much again on a 100,000-item one.
    """
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:  # pyarrow built without jemalloc (some platforms)
        return pa.system_memory_pool()


PAGE_POOL: pa.MemoryPool = _page_pool()


def read_pages(
    bodies: Sequence[bytes], job_id: str, indexes: Sequence[int]
) -> pa.RecordBatch | None:
    """The items of several scanned pages (:mod:`batch_export.flatten.scan`) in one record batch.

    The pages' bodies are read in one call of pyarrow's JSON reader, one body a line (a raw
    newline in valid JSON can only be whitespace, so it becomes a space). ``indexes`` are the
    ``input_index`` values the scan found, in order: the rows must carry exactly those.
    None means that pyarrow's reader does not take these pages as they are (a value of
    another type, text that is not valid UTF-8, ...): read them one by one, and take the
    general road for any that it still refuses.
    """
    # orjson refuses a byte-order mark and pyarrow accepts it: leave it to the former. (A
    # page's own newlines become spaces, so a mark can only start a line where a page starts:
    # looked for there, not in the whole chunk, which took a sixth of this function's time.)
    if any(body.startswith(_BOM) for body in bodies):
        return None
    chunk = b"\n".join(body.replace(b"\n", b" ") for body in bodies)
    if len(chunk) >= _MAX_BLOCK:
        return None
    try:
        table = pa_json.read_json(
            pa.BufferReader(chunk),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(chunk) + 1),
            parse_options=_PARSE_OPTIONS,
            memory_pool=PAGE_POOL,
        )
    except pa.ArrowException:
        return None
    if table.num_rows != len(bodies) or table.schema.field("results").type != _RESULTS_TYPE:
        return None
    column = table.column("results")
    # One block read, so one chunk: taken as it is rather than copied into another.
    results = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks(PAGE_POOL)
    if results.null_count:
        return None
    # With no null list, the values are the items of every page, in order (flatten() would
    # slice them by the first and last offsets: any item beyond would fail the indexes below).
    items = results.values
    if items.null_count:
        return None
    columns = dict(zip(_ITEM_TYPE.names, items.flatten(), strict=True))
    # The same bytes, read by two parsers: they must agree on the indexes the ledger counted
    # (a key given twice is where JSON parsers part ways).
    if columns["input_index"].null_count or columns["input_index"].to_pylist() != list(indexes):
        return None
    batch = _items_batch(job_id, columns)
    try:
        # pyarrow's reader does not check UTF-8; the general road replaces bad bytes.
        batch.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return batch


def read_page_batch(content: bytes, job_id: str) -> tuple[pa.RecordBatch, list[int]] | None:
    """One page's items by the chunked road, with their indexes; None for the general road.

    For every page it takes, the batch equals what the general road
    (:func:`batch_export.job.decode_json`, then :func:`flatten_items`) makes of it.
    """
    indexes = scan_indexes(content, job_id)
    if indexes is None:
        return None
    batch = read_pages([content], job_id, indexes)
    return None if batch is None else (batch, indexes)


def read_bodies(
    pages: Sequence[ResultBody], *, on_changed: Callable[[int], None] | None = None
) -> pa.RecordBatch:
    """The rows of consecutive pages of one job, in order, by whichever road each takes.

    Scanned pages are read together (:func:`read_pages`); should pyarrow refuse them so, each
    is read alone, and one it still refuses is parsed and flattened value by value, which
    names the value that does not fit (:class:`ResponseShapeError`). ``on_changed`` is told
    how many values of the items had to change to be held (text that is not UTF-8, a ``NaN``:
    :func:`batch_export.job.decode_json`), when some did.
    """
    if not pages:
        return pa.RecordBatch.from_pylist([], schema=ITEM_SCHEMA)
    job_id = pages[0].job_id
    if all(page.body is not None for page in pages):
        bodies = [page.body for page in pages if page.body is not None]
        indexes = [index for page in pages for index in page.indexes]
        batch = read_pages(bodies, job_id, indexes)
        if batch is not None:
            return batch
    batches = []
    for page in pages:
        batch, changed = _one_page(page)
        batches.append(batch)
        if changed and on_changed is not None:
            on_changed(changed)
    return pa.concat_batches(batches, memory_pool=PAGE_POOL)


def _one_page(page: ResultBody) -> tuple[pa.RecordBatch, int]:
    """One page's rows, and how many of its items' values had to change to be held."""
    if page.body is None:
        return flatten_items(page.job_id, page.items or [], page=page.page), page.values_changed
    batch = read_pages([page.body], page.job_id, page.indexes)
    if batch is not None:
        return batch, 0
    # pyarrow refused a value (bytes that are not UTF-8, say): the general road reads it.
    result = ResultPage.from_response(
        decode_json(page.body, ""), job_id=page.job_id, page=page.page, page_size=1
    )
    return flatten_items(page.job_id, result.results, page=page.page), result.values_changed


def _items_batch(job_id: str, columns: dict[str, pa.Array]) -> pa.RecordBatch:
    count = len(columns["input_index"])
    # flatten() folds a null `data` or `metadata` into its fields: they read as nulls.
    columns.update(zip(DATA_FIELDS, columns.pop("data").flatten(), strict=True))
    columns.update(zip(METADATA_FIELDS, columns.pop("metadata").flatten(), strict=True))
    columns["job_id"] = _repeated(job_id, count)
    columns["extra"] = _nulls(count)
    return pa.RecordBatch.from_arrays(
        [columns[name] for name in ITEM_SCHEMA.names], schema=ITEM_SCHEMA
    )


@functools.lru_cache(maxsize=64)
def _repeated(text: str, count: int) -> pa.Array:
    """``text`` ``count`` times as a string array (arrays are immutable, so one serves every
    page of a job)."""
    return string_array([text] * count)


@functools.lru_cache(maxsize=8)
def _nulls(count: int) -> pa.Array:
    return pa.nulls(count, pa.string())


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
    return encode_json(extra).decode("utf-8", errors="replace")


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
    got_text = shown(got)
    return ResponseShapeError(
        f"Expected {expected} in {where}{on_page} of job {job_id}, got {got_text}.",
        job_id=job_id,
        page=page,
        url=item.get("url") if isinstance(item.get("url"), str) else None,
    )
