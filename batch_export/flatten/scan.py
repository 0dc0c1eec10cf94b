"""A page's bytes looked over in the fetching thread: its indexes, and which road it takes.

Reading a page into Arrow costs most when done one page at a time (each call of pyarrow's
JSON reader has its own setup), so pages are read in chunks of many pages
(:func:`batch_export.flatten.items.read_pages`), after the fetching. What the ledger needs before
that, each page's ``input_index`` values, and what decides the road, comes from a scan of the
bytes here, with msgspec: no Python object per value, no pyarrow (so pages are fetched while
pyarrow is still loading).

A page takes the **chunked road** (:class:`ResultBody` with ``body``) when its job fields pass
the same checks as the general road's (:meth:`batch_export.job.JobStatus.from_response`,
the job asked for, counters in bounds) and its items hold only documented fields, each item
an object with an integer ``input_index``. Any other page takes the **general road**: parsed
as JSON here (:class:`ResultBody` with ``items``), flattened value by value later, where a
value of a wrong type is an error that names it.

A page whose own fields are all documented ones (:data:`batch_export.job.JOB_FIELDS`) is read
in one pass; any other in two (its own fields, then its results), with the same outcome. The
pages of a finished job repeat its fields byte for byte: :class:`PageScanner` checks them once
and checks them again when they change.

Both roads hold the same bounds. The scan's parser stops at Python's recursion limit (a page
nested past it takes the general road, which refuses it), the job's fields are checked for
nesting past :data:`~batch_export.text.MAX_DEPTH` levels, and an item field that pyarrow
takes is a string, a number or a list of strings: deeper values are refused by its explicit
schema, and their page read by the general road, whose depth check names them.

Example:

    >>> scan = PageScanner("j1", page_size=50)
    >>> page = scan(b'{"job_id": "j1", "results": [{"input_index": 3, "url": "u"}]}', "u", 1)
    >>> page.indexes, page.body is not None
    ([3], True)
    >>> scan(b'{"results": [{"input_index": 3, "region": "eu"}]}', "u", 1).items
    [{'input_index': 3, 'region': 'eu'}]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from batch_export.errors import ResponseShapeError
from batch_export.job import JOB_FIELDS, JobStatus, ResultPage, decode_json

__all__ = ["PageScanner", "ResultBody"]

_NULL = msgspec.Raw(b"null")
_MAX_INDEX = 2**63 - 1  # an index must fit the int64 column


# Raw values and an int only: these structs can hold no cycle, so the collector need not
# track the 100,000 of them a big export makes.
class _Data(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    markdown: msgspec.Raw = _NULL
    html: msgspec.Raw = _NULL
    links: msgspec.Raw = _NULL


class _Metadata(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    http_status: msgspec.Raw = _NULL
    duration_ms: msgspec.Raw = _NULL
    retry_count: msgspec.Raw = _NULL
    tokens_charged: msgspec.Raw = _NULL


class _Item(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    input_index: int
    url: msgspec.Raw = _NULL
    status: msgspec.Raw = _NULL
    error_code: msgspec.Raw = _NULL
    error_message: msgspec.Raw = _NULL
    data: _Data | None = None
    metadata: _Metadata | None = None


# A page whose own fields are all documented ones is read in one pass: those fields as raw
# JSON, the results with only their indexes parsed. Any other page is read in two: its own
# fields as raw JSON (the results skipped over), then the results.
_HEADER_FIELDS = tuple(sorted(JOB_FIELDS))


class _Results(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    results: list[_Item] | msgspec.UnsetType = msgspec.UNSET


_PAGE: msgspec.json.Decoder[_Results] = msgspec.json.Decoder(
    msgspec.defstruct(
        "_Page",
        [(name, msgspec.Raw | msgspec.UnsetType, msgspec.UNSET) for name in _HEADER_FIELDS],
        bases=(_Results,),
        forbid_unknown_fields=True,
        gc=False,
    )
)
_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RESULTS = msgspec.json.Decoder(list[_Item])


@dataclass(frozen=True, kw_only=True)
class ResultBody:
    """One page of a job's results on its way to Arrow: its bytes, or its parsed items.

    ``body`` is set for a page that takes the chunked road, ``items`` for any other; ``job``
    is the job's status as this answer gave it; ``values_changed`` counts the values of the
    items that had to change to be held (:func:`batch_export.job.decode_json`).
    """

    job_id: str
    page: int
    indexes: list[int] = field(repr=False)
    body: bytes | None = field(default=None, repr=False)
    items: list[dict[str, Any]] | None = field(default=None, repr=False)
    job: JobStatus | None = field(default=None, repr=False)
    values_changed: int = 0

    @classmethod
    def from_result_page(cls, page: ResultPage) -> ResultBody:
        """A page parsed by the general road (:class:`~batch_export.job.ResultPage`)."""
        return cls(
            job_id=page.job.job_id,
            page=page.page,
            indexes=page.input_indexes(),
            items=page.results,
            job=page.job,
            values_changed=page.values_changed,
        )

    def input_indexes(self) -> list[int]:
        """The ``input_index`` of each item, in the page's order."""
        return self.indexes


class PageScanner:
    """Turns a status answer's bytes into a :class:`ResultBody`, in a fetching thread."""

    def __init__(self, job_id: str, *, page_size: int) -> None:
        self.job_id = job_id
        self.page_size = page_size
        # The last page's own fields, as bytes, and the job's status read from them: the
        # pages of a finished job repeat the same fields, checked once.
        self._last: tuple[tuple[tuple[str, bytes], ...], JobStatus] | None = None

    def __call__(self, content: bytes, url: str, page: int) -> ResultBody:
        scanned = self._scan(content)
        if scanned is not None:
            job, indexes = scanned
            return ResultBody(job_id=self.job_id, page=page, indexes=indexes, body=content, job=job)
        result = ResultPage.from_response(
            decode_json(content, url), job_id=self.job_id, page=page, page_size=self.page_size
        )
        return ResultBody.from_result_page(result)

    def _scan(self, content: bytes) -> tuple[JobStatus, list[int]] | None:
        read = _read(content)
        if read is None:
            return None
        header, items = read
        fields = tuple((name, bytes(raw)) for name, raw in header.items())
        last = self._last
        if last is not None and last[0] == fields:
            job: JobStatus | None = last[1]
        else:
            job = _job(header, self.job_id)
            if job is not None:
                self._last = fields, job
        return None if job is None else _indexed(job, items)


def scan_indexes(content: bytes, job_id: str) -> list[int] | None:
    """The page's ``input_index`` values when it may take the chunked road, else None."""
    scanned = PageScanner(job_id, page_size=1)._scan(content)  # one page: nothing to reuse
    return None if scanned is None else scanned[1]


def _read(content: bytes) -> tuple[dict[str, msgspec.Raw], list[_Item]] | None:
    """The page's own fields as raw JSON, and its items; None when it has no results or
    they are not what the chunked road takes."""
    try:
        page = _PAGE.decode(content)
    except (msgspec.DecodeError, RecursionError):
        page = None  # a field of its own that is not documented, or a page for the general road
    try:
        if page is not None:
            if page.results is msgspec.UNSET:
                return None
            fields = ((name, getattr(page, name)) for name in _HEADER_FIELDS)
            return {name: raw for name, raw in fields if raw is not msgspec.UNSET}, page.results
        top = _TOP.decode(content)
        results = top.pop("results", None)
        return None if results is None else (top, _RESULTS.decode(results))
    except (msgspec.DecodeError, RecursionError):
        return None


def _job(header: dict[str, msgspec.Raw], job_id: str) -> JobStatus | None:
    """The job's status from a page's own fields, or None where the general road would refuse
    them: the same checks as its (:meth:`JobStatus.from_response`), so both refuse the same."""
    try:
        return JobStatus.from_response(
            {name: msgspec.json.decode(raw) for name, raw in header.items()}, job_id=job_id
        )
    except (msgspec.DecodeError, RecursionError, ResponseShapeError):
        return None


def _indexed(job: JobStatus, items: list[_Item]) -> tuple[JobStatus, list[int]] | None:
    indexes = [item.input_index for item in items]
    if any(index < 0 or index > _MAX_INDEX for index in indexes):
        return None
    return job, indexes
