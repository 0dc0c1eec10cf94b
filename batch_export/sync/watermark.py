"""The sync's watermark: how far a destination is known to be up to date with its account.

A watermark, kept in the destination by its store (``Store.save_watermark``, read back by
``Store.scan``), says: every job of the account created from ``floor`` (None: the account's
first job) up to ``newest`` is in the destination as it was listed, except the jobs in
``waiting`` (not finished when listed, or not loaded: a failure, an unusable entry), each with
its ``created_at``. ``anchor`` is the id of a job created at ``newest``.

The next sync asks the listing only for the jobs created from ``newest`` less the margin
(:data:`WATERMARK_MARGIN`, one hour: a job may appear in the listing a while after its
``created_at``, and the API's own clocks may disagree), a page or two on an account of any
size, and reads the waiting jobs that this listing did not show by their id.

Nothing in it is trusted further than it can be checked:

- a watermark of another version, unreadable, or past :data:`MAX_DOCUMENT_BYTES` is no
  watermark: the sync lists every job, as without one;
- a listing from the watermark that does not show the anchor does not describe the account
  the watermark was written for (two accounts into one destination, a job gone): the sync
  lists every job again, in the same run (:mod:`batch_export.sync.incremental`);
- a job listed outside the window asked for is ignored, and counted (``outside_window``).

What a watermark cannot see: a job created before ``newest`` less the margin that changes
after it was loaded (re-run, re-billed), or rows removed from the destination by hand. A sync
with ``full=True`` (``--full``) lists every job, as one without a watermark does.

Example:

    >>> from datetime import UTC, datetime
    >>> mark = Watermark(floor=None, newest=datetime(2026, 5, 26, 10, 30, tzinfo=UTC),
    ...                  anchor="j9", waiting={"j7": None})
    >>> Watermark.from_document(mark.to_document()) == mark
    True
    >>> mark.listing_window(TimeWindow()).since.isoformat()
    '2026-05-26T09:30:00+00:00'
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from batch_export.sync.listing import TimeWindow

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "MAX_WAITING",
    "WATERMARK_MARGIN",
    "WATERMARK_TABLE",
    "Watermark",
    "WatermarkSql",
]

# How far before the newest job seen the next listing starts: a job may be listed a while
# after its created_at (a queue, replicas), and the API's servers' clocks may disagree.
WATERMARK_MARGIN = timedelta(hours=1)
# The most waiting jobs a watermark keeps, to read by id; past it, the newest of them are
# left to the next listing, which then starts from them.
MAX_WAITING = 1_000
# A watermark is small (a waiting job is about 80 bytes); a larger document is not ours.
MAX_DOCUMENT_BYTES = 1 << 20
_VERSION = 1
# Where a table store (Delta, DuckDB, PostgreSQL) keeps its watermark: a table beside the
# others, one row (jobs_table, watermark) per jobs table.
WATERMARK_TABLE = "batch_export_watermark"


@dataclass(frozen=True, kw_only=True)
class Watermark:
    """How far a destination is up to date with its account (see above)."""

    floor: datetime | None
    newest: datetime
    anchor: str
    waiting: Mapping[str, datetime | None] = field(default_factory=dict)

    def listing_window(
        self, window: TimeWindow, *, margin: timedelta = WATERMARK_MARGIN
    ) -> TimeWindow | None:
        """The part of ``window`` to list, starting from this watermark; None when the
        watermark does not cover the start of ``window``, and the whole window must be listed.

        The anchor must be in what is listed, so a window that ends before it is not listed
        from the watermark either.
        """
        since, until = window.since, window.until
        covered = self.floor is None or (since is not None and since >= self.floor)
        if not covered:
            return None
        if (since is not None and since > self.newest) or (
            until is not None and until <= self.newest
        ):
            return None
        start = self.newest - margin
        return TimeWindow(since=start if since is None else max(start, since), until=until)

    def to_document(self) -> str:
        """The watermark as the JSON text a store keeps (the same text for the same mark)."""
        document = {
            "watermark_version": _VERSION,
            "floor": _iso(self.floor),
            "newest": _iso(self.newest),
            "anchor": self.anchor,
            "waiting": {job_id: _iso(when) for job_id, when in sorted(self.waiting.items())},
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_document(cls, text: str | bytes | None) -> Watermark | None:
        """The watermark a store kept, or None when there is none that can be trusted."""
        if text is None or len(text) > MAX_DOCUMENT_BYTES:
            return None
        try:
            document = json.loads(text)
            return cls._from_fields(document) if isinstance(document, dict) else None
        except (KeyError, ValueError, TypeError, OverflowError, RecursionError):
            return None

    @classmethod
    def _from_fields(cls, document: dict[str, Any]) -> Watermark | None:
        newest, anchor, waiting = document["newest"], document["anchor"], document["waiting"]
        if (
            document.get("watermark_version") != _VERSION
            or not isinstance(newest, str)
            or not isinstance(anchor, str)
            or not isinstance(waiting, dict)
        ):
            return None
        return cls(
            floor=_moment(document["floor"]),
            newest=_required(_moment(newest)),
            anchor=anchor,
            waiting={str(job_id): _moment(when) for job_id, when in waiting.items()},
        )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _moment(text: object) -> datetime | None:
    """A timestamp this module wrote (aware, UTC), None for null; TypeError for anything
    else, which makes the whole document untrusted."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise TypeError("not a timestamp")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise TypeError("not an aware timestamp")
    return moment.astimezone(UTC)


def _required(moment: datetime | None) -> datetime:
    if moment is None:
        raise TypeError("no newest")
    return moment


class WatermarkSql(NamedTuple):
    """The statements that keep watermarks in :data:`WATERMARK_TABLE` of a SQL database.

    >>> WatermarkSql.of(text="text", marks=("$1", "$2")).select
    'SELECT watermark FROM batch_export_watermark WHERE jobs_table = $1'
    """

    create: str
    select: str
    replace: str

    @classmethod
    def of(cls, *, text: str, marks: tuple[str, str]) -> WatermarkSql:
        """The statements in a dialect: its text type, and its two parameter marks."""
        table = WATERMARK_TABLE
        return cls(
            create=f"CREATE TABLE IF NOT EXISTS {table} "
            f"(jobs_table {text} PRIMARY KEY, watermark {text})",
            select=f"SELECT watermark FROM {table} WHERE jobs_table = {marks[0]}",
            replace=f"INSERT INTO {table} (jobs_table, watermark) VALUES ({marks[0]}, "
            f"{marks[1]}) ON CONFLICT (jobs_table) DO UPDATE SET watermark = excluded.watermark",
        )
