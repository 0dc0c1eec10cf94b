"""What a sync did, for machines (JSON) and for people (a few lines), and its events.

A sync reports as it goes through a callback, ``on_event(name, fields)``; :class:`EventLog`
writes those events as text lines or as one JSON object a line (``--log-format json``):

==============  ===================================================================
event           fields
==============  ===================================================================
run_started     dest, listed, outside_window, to_export, skipped, dry_run,
                listing_requests, listed_since
job_planned     job_id, reason, created_at                         (dry run only)
job_started     job_id, reason, created_at
job_exported    job_id, reason, rows, seconds, items_path, api_key_hidden (when not 0),
                values_changed (when not 0)
job_skipped     job_id, reason (unchanged, not_finished, over_limit)
job_failed      job_id, reason (the message), error, exit_code
watermark_not_saved  reason                       (the next sync lists more)
native_output   lines, text (what a native library printed on stderr, the first lines)
run_finished    exported, failed, skipped, rows, seconds, exit_code
==============  ===================================================================

Every event also carries ``ts`` (UTC, ISO 8601). :class:`SyncReport` is the run summary.

Job ids, reasons and error messages may hold text from the network: in text lines and the
summary for people, control characters are shown escaped (a newline cannot forge a line, an
escape sequence cannot drive the terminal); JSON is strict (NaN and infinities are null).

Example:

    >>> report = SyncReport(dest="out/", dry_run=False)
    >>> report.exit_code, report.to_text()
    (0, 'Nothing to export: out/ is up to date.\\n')
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from batch_export.errors import SyncIncomplete
from batch_export.schema import SCHEMA_VERSION
from batch_export.sync.layout import LAYOUT_VERSION
from batch_export.text import printable, strict_json
from batch_export.version import __version__

__all__ = ["EXIT_INCOMPLETE", "EventLog", "OnEvent", "SyncReport", "utc_now"]

OnEvent = Callable[[str, dict[str, Any]], None]
EXIT_INCOMPLETE = SyncIncomplete.exit_code


def utc_now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


@dataclass(kw_only=True)
class SyncReport:
    """The run summary of one sync. Every attribute is JSON-ready."""

    dest: str
    dry_run: bool
    listed: int = 0
    outside_window: int = 0
    listing_requests: int = 0
    listing: dict[str, Any] = field(default_factory=dict)
    exported: list[dict[str, Any]] = field(default_factory=list)
    planned: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    removed_orphans: int = 0
    started_at: str = field(default_factory=lambda: utc_now().isoformat())
    finished_at: str | None = None
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        """Item rows written by this run."""
        return sum(int(job["rows"]) for job in self.exported)

    @property
    def api_key_hidden(self) -> int:
        """Runs of the API key that the exported jobs' answers held, each written <hidden>."""
        return sum(int(job.get("api_key_hidden", 0)) for job in self.exported)

    @property
    def values_changed(self) -> int:
        """Values the exported jobs held that their destination could not, changed by its
        documented rule (NUL in PostgreSQL) or on the way (see the README), each counted."""
        return sum(int(job.get("values_changed", 0)) for job in self.exported)

    @property
    def exit_code(self) -> int:
        """0 when every job to export was exported, 10 when some failed."""
        return EXIT_INCOMPLETE if self.failed else 0

    def count_skipped(self, reasons: list[str]) -> None:
        """Add skipped jobs, by reason."""
        self.skipped = dict(Counter(self.skipped) + Counter(reasons))

    def to_dict(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict (stdout with --log-format json, or --summary)."""
        fields = asdict(self)
        fields.update(
            rows=self.rows,
            api_key_hidden=self.api_key_hidden,
            values_changed=self.values_changed,
            exit_code=self.exit_code,
            tool_version=__version__,
            schema_version=SCHEMA_VERSION,
            layout_version=LAYOUT_VERSION,
        )
        return fields

    def to_json(self, *, indent: int | None = None) -> str:
        """The summary as JSON text, one line unless ``indent`` is given."""
        return strict_json(self.to_dict(), indent=indent) + "\n"

    def to_text(self) -> str:
        """A few lines for a person: what was done, and what failed."""
        lines = [f"would export {p['job_id']} ({p['reason']})" for p in self.planned]
        lines.append(self._headline())
        if self.listing_requests:
            lines.append(self._listing_line())
        lines += [f"  failed {f['job_id']}: {f['reason']}" for f in self.failed]
        return "".join(printable(line) + "\n" for line in lines)

    def raise_for_failures(self) -> None:
        """Raise :class:`~batch_export.errors.SyncIncomplete` (exit 10) if any job failed."""
        if self.failed:
            shown = printable(", ".join(f["job_id"] for f in self.failed[:5]))
            more = f" and {len(self.failed) - 5} more" if len(self.failed) > 5 else ""
            raise SyncIncomplete(
                f"{len(self.failed)} of {len(self.failed) + len(self.exported)} jobs could not "
                f"be exported to {self.dest} ({shown}{more}); the others were. Rerun the same "
                "command to retry them: jobs already exported are not exported again.",
                failed_jobs=tuple(f["job_id"] for f in self.failed),
            )

    def _listing_line(self) -> str:
        """How the jobs were listed: ``Listed 54 jobs in 1 request, created from ...``."""
        plural = "s" if self.listing_requests > 1 else ""
        line = f"Listed {_jobs(self.listed)} in {self.listing_requests:,} request{plural}"
        since, until = self.listing.get("since"), self.listing.get("until")
        line += f", created from {since}" if since else ""
        line += f" until {until}" if until else ""
        line += " (from the watermark)" if self.listing.get("from_watermark") else ""
        read = self.listing.get("read_directly", 0)
        return line + (
            f"; {read:,} waiting job{'s' if read > 1 else ''} read by id." if read else "."
        )

    def _headline(self) -> str:
        rest = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in self.skipped.items())
        rest = f" ({rest})" if rest else ""
        if self.dry_run:
            return f"Dry run: would export {_jobs(len(self.planned))} to {self.dest}{rest}."
        if not self.exported and not self.failed:
            return f"Nothing to export: {self.dest} is up to date{rest}."
        failed = f"; {len(self.failed)} failed" if self.failed else ""
        hidden = self.api_key_hidden
        key = f"; {hidden:,} runs of the API key written <hidden>" if hidden else ""
        changed = self.values_changed
        key += f"; {changed:,} values changed to fit (see values_changed)" if changed else ""
        return (
            f"Exported {_jobs(len(self.exported))} ({self.rows:,} rows) to {self.dest} "
            f"in {self.seconds:.1f} s{failed}{key}{rest}."
        )


class EventLog:
    """Writes sync events to ``stream`` (stderr): text lines, or one JSON object a line.

    Safe to call from several threads; a line is never interleaved with another.

    >>> import io
    >>> stream = io.StringIO()
    >>> EventLog(log_format="json", stream=stream)("job_skipped", {"job_id": "j1"})
    >>> stream.getvalue().rstrip().endswith('"event":"job_skipped","job_id":"j1"}')
    True
    """

    def __init__(self, *, log_format: str = "text", stream: TextIO | None = None) -> None:
        self.log_format = log_format
        self._stream = stream
        self._lock = threading.Lock()

    @property
    def stream(self) -> TextIO:
        """``stream``, or ``sys.stderr`` as it is at each event: while a sync catches what
        native libraries print on descriptor 2, that is the real standard error."""
        return self._stream or sys.stderr

    def __call__(self, name: str, fields: dict[str, Any]) -> None:
        if self.log_format == "json":
            line = strict_json({"ts": utc_now().isoformat(), "event": name, **fields})
        else:
            text = _text_line(name, fields)
            if text is None:
                return
            line = f"batch-export sync: {printable(text)}"
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def _jobs(count: int) -> str:
    return f"{count:,} job" if count == 1 else f"{count:,} jobs"


def _text_line(name: str, fields: dict[str, Any]) -> str | None:
    job = fields.get("job_id")
    if name == "job_exported":
        return (
            f"exported {job} ({fields['reason']}): {fields['rows']:,} rows "
            f"in {fields['seconds']:.1f} s"
        )
    if name == "job_failed":
        return f"FAILED {job} (exit {fields['exit_code']}): {fields['reason']}"
    if name == "job_skipped" and fields["reason"] == "not_finished":
        return f"skipped {job}: {fields['reason'].replace('_', ' ')}"
    if name == "run_started":
        return (
            f"{fields['listed']} jobs listed, {fields['to_export']} to export to {fields['dest']}"
        )
    if name == "watermark_not_saved":
        return f"watermark not saved (the next sync lists more): {fields['reason']}"
    if name == "native_output":  # a Rust panic, an Arrow C++ line: its first line is enough
        first = str(fields["text"]).split("\n", 1)[0]
        return f"a native library printed {fields['lines']} line(s) on stderr: {first}"
    # One line a job is enough for people (job_started adds nothing they act on); unchanged
    # and over-limit jobs can be thousands, and the summary on stdout counts them.
    return None
