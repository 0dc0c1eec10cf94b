"""Turn a page of API items into one Arrow record batch of the output schema.

Two roads lead to the same batch. :func:`read_page_batch` hands a page's raw JSON bytes to
pyarrow's own JSON reader, which builds the columns in C++ without making a Python object per
value (and without holding the GIL, so pages are read in parallel with the fetching). It
takes only pages whose items hold nothing but the documented fields, with the documented
types; for any other page it answers None, and :func:`flatten_items` builds the batch from the
parsed items, column by column. Both give the same rows for the pages both take (the tests
hold them to it).

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
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.json as pa_json

from batch_export.errors import ResponseShapeError
from batch_export.job import COUNTERS, ResultPage, decode_json
from batch_export.schema import DATA_FIELDS, ITEM_FIELDS, ITEM_SCHEMA, METADATA_FIELDS
from batch_export.text import encode_json

__all__ = ["PAGE_POOL", "PageBatch", "PageDecoder", "flatten_items", "read_page_batch"]

# After this many pages of a job that pyarrow's reader could not take (undocumented fields,
# most likely on every page), the rest go straight to the general road.
_DECLINES_BEFORE_GIVING_UP = 3

_ITEM_KNOWN = frozenset(ITEM_FIELDS)
_DATA_KNOWN = frozenset(DATA_FIELDS)
_METADATA_KNOWN = frozenset(METADATA_FIELDS)
_EMPTY: dict[str, Any] = {}

# What a page must look like for pyarrow's reader: every documented item field with its
# output type, nested as the API nests it. The job's counters are typed too, so that a page
# whose counters the general road would refuse (a negative or non-integer count) goes there.
_DIRECT_FIELDS = tuple(name for name in ITEM_FIELDS if name not in ("data", "metadata"))
_ITEM_TYPE = pa.struct(
    [
        *(ITEM_SCHEMA.field(name) for name in _DIRECT_FIELDS),
        pa.field("data", pa.struct([ITEM_SCHEMA.field(name) for name in DATA_FIELDS])),
        pa.field("metadata", pa.struct([ITEM_SCHEMA.field(name) for name in METADATA_FIELDS])),
    ]
)
_RESULTS_TYPE = pa.list_(_ITEM_TYPE)
_TOKEN_FIELDS = ("tokens_charged_total", "tokens_reserved")
_PAGE_SCHEMA = pa.schema(
    [
        pa.field("job_id", pa.string()),
        pa.field("results", _RESULTS_TYPE),
        *(pa.field(name, pa.int64()) for name in ("total_urls", *COUNTERS)),
        pa.field("token_summary", pa.struct([(name, pa.int64()) for name in _TOKEN_FIELDS])),
    ]
)
# "infer" rather than "error": the job's own fields vary (batch_config carries the request
# headers a user set), and an undocumented item field shows as a type that is not _ITEM_TYPE.
_PARSE_OPTIONS = pa_json.ParseOptions(
    explicit_schema=_PAGE_SCHEMA, unexpected_field_behavior="infer", newlines_in_values=True
)
_HEADER_FIELDS = [field.name for field in _PAGE_SCHEMA if field.name != "results"]
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


def read_page_batch(content: bytes, job_id: str) -> tuple[pa.RecordBatch, list[int]] | None:
    """The items of one status response read from its JSON bytes by pyarrow, or None.

    Returns the batch with its items' ``input_index`` values, in order. None means "take the
    general road" (:func:`batch_export.job.decode_json`, then :func:`flatten_items`): the
    body is not one JSON object, is not valid UTF-8, has an item field the schema does not
    know or a value of another type, an item without a non-negative ``input_index``, or job
    counters that are not non-negative integers. For every page it takes, the batch equals
    what the general road makes of it.
    """
    # orjson refuses a byte-order mark and pyarrow accepts it: leave the verdict to the former.
    if content.startswith(_BOM) or len(content) >= _MAX_BLOCK:
        return None
    try:
        table = pa_json.read_json(
            pa.BufferReader(content),
            read_options=pa_json.ReadOptions(use_threads=False, block_size=len(content) + 1),
            parse_options=_PARSE_OPTIONS,
            memory_pool=PAGE_POOL,
        )
    except pa.ArrowException:
        return None
    if table.num_rows != 1 or table.schema.field("results").type != _RESULTS_TYPE:
        return None
    # Each pyarrow call costs microseconds and a trip through the GIL: the few header values
    # are checked in Python, in one conversion.
    results = table.column("results").chunk(0)
    header = table.select(_HEADER_FIELDS).to_pylist()[0]
    if results.null_count or not _header_fits(header, job_id):
        return None
    items = results.flatten()
    if items.null_count:
        return None
    columns = dict(zip(_ITEM_TYPE.names, items.flatten(), strict=True))
    indexes = columns["input_index"].to_pylist()
    if None in indexes or (indexes and min(indexes) < 0):
        return None
    batch = _items_batch(job_id, columns)
    try:
        # pyarrow's reader does not check UTF-8; the general road replaces bad bytes.
        batch.validate(full=True)
    except pa.ArrowInvalid:
        return None
    return batch, indexes


def _header_fits(header: dict[str, Any], job_id: str) -> bool:
    """The answer is of the job asked for, and its counters are non-negative integers.

    Any other answer takes the general road, whose checks name what is wrong.
    """
    if header.pop("job_id") not in (None, job_id):
        return False
    tokens = header.pop("token_summary") or {}
    values = [*header.values(), *(tokens.get(name) for name in _TOKEN_FIELDS)]
    return all(value is None or value >= 0 for value in values)


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
    """``text`` ``count`` times as a string array, built from its buffers (arrays are immutable,
    so one serves every page of a job).

    pa.array() on Python values imports pandas on first use (pyarrow looks for its types):
    a third of a second and 30 MB that an export does not otherwise need.
    """
    encoded = text.encode("utf-8")
    offsets = array("i", (len(encoded) * position for position in range(count + 1)))
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(encoded * count))


@functools.lru_cache(maxsize=8)
def _nulls(count: int) -> pa.Array:
    return pa.nulls(count, pa.string())


@dataclass(frozen=True, kw_only=True)
class PageBatch:
    """One page of a job's results, on its way to becoming a record batch of the item schema.

    A page that pyarrow's reader took holds its batch already; any other page holds its parsed
    items, flattened by :meth:`batch` in the consumer's thread, after the completeness checks,
    so that errors come in the same order whichever road the page took.
    """

    job_id: str
    page: int
    indexes: list[int] = field(repr=False)
    arrow: pa.RecordBatch | None = field(default=None, repr=False)
    items: list[dict[str, Any]] | None = field(default=None, repr=False)

    @classmethod
    def from_result_page(cls, page: ResultPage) -> PageBatch:
        """A page parsed by the general road (:class:`~batch_export.job.ResultPage`)."""
        return cls(
            job_id=page.job.job_id,
            page=page.page,
            indexes=page.input_indexes(),
            items=page.results,
        )

    def input_indexes(self) -> list[int]:
        """The ``input_index`` of each item, in the page's order."""
        return self.indexes

    def batch(self) -> pa.RecordBatch:
        """The page's rows; raises :class:`ResponseShapeError` for a value of a wrong type."""
        if self.arrow is not None:
            return self.arrow
        return flatten_items(self.job_id, self.items or [], page=self.page)


class PageDecoder:
    """Turns a status answer's bytes into a :class:`PageBatch`, in the fetching threads.

    pyarrow's reader first (it runs without the GIL); the general road for a page it does
    not take, and for every page once it has declined a few (a job whose items carry
    undocumented fields has them on every page).

    >>> decode = PageDecoder("j1", page_size=50)
    >>> page = decode(b'{"job_id": "j1", "results": [{"input_index": 3}]}', "u", 1)
    >>> page.indexes, page.batch().num_rows
    ([3], 1)
    """

    def __init__(self, job_id: str, *, page_size: int) -> None:
        self.job_id = job_id
        self.page_size = page_size
        # Races between workers only make a page or two try pyarrow once more: harmless.
        self.declines = 0

    def __call__(self, content: bytes, url: str, page: int) -> PageBatch:
        if self.declines < _DECLINES_BEFORE_GIVING_UP:
            read = read_page_batch(content, self.job_id)
            if read is not None:
                batch, indexes = read
                return PageBatch(job_id=self.job_id, page=page, indexes=indexes, arrow=batch)
            self.declines += 1
        body = decode_json(content, url)
        result = ResultPage.from_response(
            body, job_id=self.job_id, page=page, page_size=self.page_size
        )
        return PageBatch.from_result_page(result)


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
    shown = repr(got)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ResponseShapeError(
        f"Expected {expected} in {where}{on_page} of job {job_id}, got {shown}.",
        job_id=job_id,
        page=page,
        url=item.get("url") if isinstance(item.get("url"), str) else None,
    )
