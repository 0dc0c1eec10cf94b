"""What an export contained: item statuses, failure codes, tokens, timings.

:class:`SummaryBuilder` only accumulates what passes by (record batches, then the job's final
status); it never holds the rows. :class:`Summary` is the result: printed for people by
:meth:`Summary.to_text`, written as JSON for machines by :meth:`Summary.to_dict`.

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

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batch_export.job import JobStatus

__all__ = ["Summary", "SummaryBuilder"]


@dataclass(frozen=True, kw_only=True)
class Summary:
    """The figures of one export. Every attribute is JSON-ready."""

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
    job: dict[str, Any] = field(default_factory=dict)
    requests: dict[str, Any] = field(default_factory=dict)
    output: dict[str, Any] = field(default_factory=dict)

    @property
    def failed_items(self) -> int:
        """How many items ended ``failed``."""
        return self.by_status.get("failed", 0)

    def to_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict (the ``--summary`` file)."""
        return asdict(self)

    def to_json(self) -> str:
        """The summary as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_text(self) -> str:
        """A few aligned lines for a person at a terminal."""
        lines = [self._headline()]
        lines.append(_line("items", _counts(self.by_status) or "none"))
        if self.failure_codes:
            lines.append(_line("failures", _counts(self.failure_codes)))
        charged, items, reserved = (
            self.tokens.get(k) for k in ("charged_total", "charged_items", "reserved")
        )
        mismatch = "" if charged == items else "  (differs from the job's total)"
        lines.append(
            _line(
                "tokens",
                f"charged {_n(charged)}, items sum {_n(items)}{mismatch}, reserved {_n(reserved)}",
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
                    f"p50 {_n(d['p50'])} ms, p95 {_n(d['p95'])} ms, max {_n(d['max'])} ms",
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
        return "\n".join(lines) + "\n"

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
        self._retries = 0
        self._tokens = 0
        self._failed_urls: list[str] = []

    def add(self, batch: pa.RecordBatch) -> None:
        """Count one record batch of the item schema."""
        self.rows += batch.num_rows
        _count_into(self._status, batch.column("status"))
        _count_into(self._codes, batch.column("error_code"))
        _count_into(self._http, batch.column("http_status"))
        self._durations.append(batch.column("duration_ms").drop_null())
        self._retries += _sum(batch.column("retry_count"))
        self._tokens += _sum(batch.column("tokens_charged"))
        failed = pc.equal(batch.column("status"), "failed")
        urls = pc.filter(batch.column("url"), pc.fill_null(failed, False))
        self._failed_urls.extend(url for url in urls.to_pylist() if url is not None)

    def build(
        self,
        *,
        job_id: str,
        job: JobStatus | None = None,
        requests: dict[str, Any] | None = None,
        output: dict[str, Any] | None = None,
    ) -> Summary:
        """The summary of everything added so far, with the job's own figures."""
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
            job=_job_figures(job),
            requests=requests or {},
            output=output or {},
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


def _sum(column: pa.Array) -> int:
    total = pc.sum(column).as_py()
    return int(total) if total is not None else 0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())


def _n(value: float | int | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if isinstance(value, float) else f"{value:,}"


def _line(label: str, text: str) -> str:
    return f"  {label:<9} {text}"
