"""What an export contained: item statuses, failure codes, tokens, timings.

:class:`SummaryBuilder` only accumulates what passes by (record batches, then the job's final
status); it never holds the rows. :class:`Summary` is the result: printed for people by
:meth:`Summary.to_text`, written as JSON for machines by :meth:`Summary.to_dict`, shown in a
notebook as a compact HTML report (:mod:`batch_export.summary.report`), and offered as small
DataFrames by :attr:`Summary.frames`.

Example:

    >>> import pyarrow as pa
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> rows = [{"job_id": "j1", "input_index": 0, "status": "failed", "error_code": "http_403"}]
    >>> builder = SummaryBuilder()
    >>> builder.add(pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA))
    >>> builder.build(job_id="j1").failure_codes
    {'http_403': 1}
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from batch_export.batches import string_array
from batch_export.codes import may_resubmit
from batch_export.job import JobStatus
from batch_export.summary.failures import code_lines, failure_notes, resubmit_counts, resubmit_text
from batch_export.summary.frames import SummaryFrames
from batch_export.text import figure, printable, strict_json

__all__ = ["DURATION_BIN_EDGES_MS", "Summary", "SummaryBuilder", "SummaryFrames"]

# Lower edges of the duration histogram's bins, in ms, on a 1-2-5 (log-like) scale: fixed, so
# that histograms of different jobs compare bin for bin, and the builder keeps 14 counters
# rather than the durations. The last bin holds everything from 100 s up.
DURATION_BIN_EDGES_MS: tuple[int, ...] = (
    0, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
)  # fmt: skip
_EXAMPLE_CHARS = 500
_REPR_CODES = 5
_EXACT = pa.decimal128(38, 0)
# Built from its buffers: pa.scalar("failed") would make pyarrow import pandas (0.2 s).
_FAILED = string_array(["failed"])[0]
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True, kw_only=True, repr=False)
class Summary:
    """The figures of one export. Every attribute is JSON-ready.

    ``duration_histogram`` counts items per duration bin (``edges_ms`` are the bins' lower
    edges); ``failure_examples`` keeps, per failure code, the first failed item's ``url`` and
    ``error_message``. ``api_key_hidden`` counts the runs of the API key (8 or more of its
    characters in a row) that the server had put in the job's fields or items, each written
    as ``<hidden>``. ``values_changed`` counts the values of the job's fields and items that
    had to change to be held (``NaN`` to null, text that is not UTF-8 to U+FFFD; see
    :func:`batch_export.job.decode_json`).

    ``retryable_failed_urls`` are the failed items' URLs whose failure code says resubmitting
    may help (:mod:`batch_export.codes`); :meth:`to_dict` adds each code's meaning and verdict
    (``failure_notes``) and the items per verdict (``resubmit``).
    """

    job_id: str
    job_status: str | None = None
    rows: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    failure_codes: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int | None] = field(default_factory=dict)
    invalid_urls: list[str] = field(default_factory=list)
    http_status: dict[str, int] = field(default_factory=dict)
    duration_ms: dict[str, float | None] = field(default_factory=dict)
    retry_count_total: int = 0
    failed_urls: list[str] = field(default_factory=list)
    retryable_failed_urls: list[str] = field(default_factory=list)
    duration_histogram: dict[str, list[int]] = field(default_factory=dict)
    failure_examples: dict[str, dict[str, str | None]] = field(default_factory=dict)
    job: dict[str, Any] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)
    api_key_hidden: int = 0
    values_changed: int = 0

    @property
    def failed_items(self) -> int:
        """How many items ended ``failed``."""
        return self.by_status.get("failed", 0)

    @property
    def frames(self) -> SummaryFrames:
        """The counts as small DataFrames: ``failure_codes``, ``by_status``, ``http_status``."""
        return SummaryFrames(self)

    def to_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict (the ``--summary`` file)."""
        facts = asdict(self)
        # Derived from the one table of codes, for readers of the file.
        facts["failure_notes"] = failure_notes(self.failure_codes)
        facts["resubmit"] = resubmit_counts(self.failure_codes)
        return facts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        """The summary that :meth:`to_dict` gave; keys it does not know are ignored.

        >>> Summary.from_dict({"job_id": "j1", "rows": 3, "later": 1}).rows
        3
        """
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def __repr__(self) -> str:
        codes = list(self.failure_codes.items())
        shown = ", ".join(f"{code!r}: {count}" for code, count in codes[:_REPR_CODES])
        more = f", ... {len(codes) - _REPR_CODES} more" if len(codes) > _REPR_CODES else ""
        return (
            f"Summary(job_id={self.job_id!r}, job_status={self.job_status!r}, rows={self.rows},\n"
            f"        by_status={self.by_status!r},\n"
            f"        failure_codes={{{shown}{more}}},\n"
            f"        tokens={self.tokens!r})"
        )

    def _repr_html_(self) -> str:
        # Imported here: the report is only needed when a notebook asks.
        from batch_export.summary.report import render_fragment

        return render_fragment(self)

    def to_json(self) -> str:
        """The summary as indented JSON text, strict: NaN or infinities sent by the API
        (in a job's config, say) are written as null."""
        return strict_json(self.to_dict(), indent=2) + "\n"

    def failed_urls_text(self, *, retryable_only: bool = False) -> str:
        """The failed items' URLs, one a line (the ``--failed-urls`` file); with
        ``retryable_only``, only those whose code says resubmitting may help
        (``--failed-urls-retryable``).

        A URL's own control characters are percent-encoded, so that one URL stays one line.

        >>> Summary(job_id="j1", failed_urls=["https://a.test/x\\ny"]).failed_urls_text()
        'https://a.test/x%0Ay\\n'
        """
        urls = self.retryable_failed_urls if retryable_only else self.failed_urls
        return "".join(_CONTROL.sub(_percent, url) + "\n" for url in urls)

    def to_text(self) -> str:
        """A few aligned lines for a person at a terminal."""
        lines = [self._headline()]
        lines.append(_line("items", _counts(self.by_status) or "none"))
        if self.failure_codes:
            lines.append(_line("failures", _counts(self.failure_codes)))
            lines += [_line("", line) for line in code_lines(self.failure_codes)]
            lines.append(_line("resubmit", resubmit_text(self.failure_codes)))
        charged, items, reserved = (
            self.tokens.get(k) for k in ("charged_total", "charged_items", "reserved")
        )
        mismatch = "" if charged == items else "  (differs from the job's total)"
        lines.append(
            _line(
                "tokens",
                f"charged {figure(charged)}, items sum {figure(items)}{mismatch}, "
                f"reserved {figure(reserved)}",
            )
        )
        if self.invalid_urls:
            lines.append(
                _line(
                    "invalid",
                    f"{len(self.invalid_urls)}: "
                    + ", ".join(self.invalid_urls[:3])
                    + (" ..." if len(self.invalid_urls) > 3 else ""),
                )
            )
        if self.http_status:
            lines.append(_line("http", _counts(self.http_status)))
        if self.duration_ms.get("max") is not None:
            d = self.duration_ms
            lines.append(
                _line(
                    "duration",
                    f"p50 {figure(d['p50'])} ms, p95 {figure(d['p95'])} ms, "
                    f"max {figure(d['max'])} ms",
                )
            )
        lines.append(
            _line(
                "retries",
                f"{self.retry_count_total} by the scraper; "
                f"{self.requests.get('retries', 0)} API retries over "
                f"{self.requests.get('requests', 0)} requests",
            )
        )
        if self.api_key_hidden:
            hidden = f"{figure(self.api_key_hidden)} runs in the API's answers, written <hidden>"
            lines.append(_line("api key", hidden))
        if self.values_changed:
            changed = f"{figure(self.values_changed)} changed to be held (NaN to null, U+FFFD)"
            lines.append(_line("values", changed))
        # Every figure may hold the API's text: control characters are shown escaped.
        return "".join(printable(line) + "\n" for line in lines)

    def _headline(self) -> str:
        where = self.output.get("path")
        to = f" to {where} ({self.output.get('format')})" if where else ""
        return f"Job {self.job_id} {self.job_status or 'status unknown'}: {self.rows} rows{to}"


class SummaryBuilder:
    """Accumulates the summary of an export from the record batches that pass by."""

    def __init__(self) -> None:
        self.rows = 0
        self._status: Counter[str] = Counter()
        self._codes: Counter[str] = Counter()
        self._http: Counter[str] = Counter()
        self._durations: list[pa.Array] = []
        self._duration_bins = np.zeros(len(DURATION_BIN_EDGES_MS), dtype=np.int64)
        self._examples: dict[str, dict[str, str | None]] = {}
        self._retries = 0
        self._tokens = 0
        self._failed_urls: list[str] = []
        self._retryable_urls: list[str] = []

    def add(self, batch: pa.RecordBatch) -> None:
        """Count one record batch of the item schema."""
        self.rows += batch.num_rows
        _count_into(self._status, batch.column("status"))
        _count_into(self._codes, batch.column("error_code"))
        _count_into(self._http, batch.column("http_status"))
        durations = batch.column("duration_ms").drop_null()
        self._durations.append(durations)
        self._duration_bins += _binned(durations)
        self._retries += _sum(batch.column("retry_count"))
        self._tokens += _sum(batch.column("tokens_charged"))
        # A null status is not "failed": filter() drops the rows whose mask is null.
        failed = pc.equal(batch.column("status"), _FAILED)
        urls = pc.filter(batch.column("url"), failed).to_pylist()
        self._failed_urls.extend(url for url in urls if url is not None)
        codes = pc.filter(batch.column("error_code"), failed).to_pylist()
        self._retryable_urls.extend(
            url
            for url, code in zip(urls, codes, strict=True)
            if url is not None and may_resubmit(code)
        )
        self._keep_examples(batch)

    def _keep_examples(self, batch: pa.RecordBatch) -> None:
        codes = batch.column("error_code")
        for position in pc.indices_nonzero(pc.is_valid(codes)).to_pylist():
            code = str(codes[position].as_py())
            if code not in self._examples:
                message = batch.column("error_message")[position].as_py()
                self._examples[code] = {
                    "url": batch.column("url")[position].as_py(),
                    "error_message": None if message is None else message[:_EXAMPLE_CHARS],
                }

    def build(
        self,
        *,
        job_id: str,
        job: JobStatus | None = None,
        requests: dict[str, Any] | None = None,
        output: dict[str, Any] | None = None,
        api_key_hidden: int = 0,
        values_changed: int = 0,
    ) -> Summary:
        """The summary of everything added so far, with the job's own figures.

        ``values_changed`` counts the items' changed values; the job's own are added to it.
        """
        return Summary(
            job_id=job_id,
            job_status=job.status if job else None,
            rows=self.rows,
            by_status=dict(self._status.most_common()),
            failure_codes=dict(self._codes.most_common()),
            tokens={
                "charged_total": job.tokens_charged_total if job else None,
                "reserved": job.tokens_reserved if job else None,
                "charged_items": self._tokens,
            },
            invalid_urls=list(job.invalid_urls) if job else [],
            http_status=dict(sorted(self._http.items())),
            duration_ms=self._duration_stats(),
            retry_count_total=self._retries,
            failed_urls=list(self._failed_urls),
            retryable_failed_urls=list(self._retryable_urls),
            duration_histogram={
                "edges_ms": list(DURATION_BIN_EDGES_MS),
                "counts": [int(count) for count in self._duration_bins],
            },
            failure_examples={code: dict(self._examples[code]) for code in self._codes},
            job=_job_figures(job),
            requests=requests or {},
            output=output or {},
            api_key_hidden=api_key_hidden,
            values_changed=values_changed + (job.values_changed if job else 0),
        )

    def _duration_stats(self) -> dict[str, float | None]:
        durations = pa.chunked_array(self._durations, type=pa.int64())
        if len(durations) == 0:
            return {"p50": None, "p95": None, "max": None}
        p50, p95 = pc.quantile(durations, q=[0.5, 0.95], interpolation="nearest").to_pylist()
        return {"p50": p50, "p95": p95, "max": pc.max(durations).as_py()}


def _job_figures(job: JobStatus | None) -> dict[str, Any]:
    if job is None:
        return {}
    figures = job.to_dict()
    figures.pop("invalid_urls")
    return figures


def _count_into(counter: Counter[str], column: pa.Array) -> None:
    for entry in pc.value_counts(column.drop_null()).to_pylist():
        counter[str(entry["values"])] += entry["counts"]


def _binned(durations: pa.Array) -> np.ndarray[Any, np.dtype[np.int64]]:
    # A negative duration (the API's data, not ours) counts in the first bin.
    bins = np.searchsorted(DURATION_BIN_EDGES_MS, _int64s(durations), side="right") - 1
    return np.bincount(np.clip(bins, 0, None), minlength=len(DURATION_BIN_EDGES_MS))


def _int64s(array: pa.Array) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The values of an int64 array without nulls, read from its buffer.

    Not ``to_numpy()``: that makes pyarrow import pandas (a fifth of a second) on first use.
    """
    if len(array) == 0:
        return np.zeros(0, dtype=np.int64)
    data = array.buffers()[1]
    return np.frombuffer(data, dtype=np.int64, count=len(array), offset=array.offset * 8)


def _sum(column: pa.Array) -> int:
    # Summed as 38-digit decimals: exact where int64 would wrap (token counts near 2**62).
    total = pc.sum(column.cast(_EXACT)).as_py()
    return int(total) if total is not None else 0


def _percent(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def _line(label: str, text: str) -> str:
    return f"  {label:<9} {text}"
