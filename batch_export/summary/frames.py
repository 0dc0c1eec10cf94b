"""A summary's counts as small DataFrames, for notebooks (pandas imported on use).

:attr:`batch_export.summary.counts.Summary.frames` hands these out; this module reads the
counts through :class:`Counted`, so that it needs nothing of the summary but its figures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from batch_export.summary.failures import failure_notes

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Counted", "SummaryFrames"]


class Counted(Protocol):
    """The figures of a summary that the frames show (a frozen ``Summary`` has them)."""

    @property
    def rows(self) -> int: ...
    @property
    def by_status(self) -> dict[str, int]: ...
    @property
    def failure_codes(self) -> dict[str, int]: ...
    @property
    def http_status(self) -> dict[str, int]: ...
    @property
    def duration_histogram(self) -> dict[str, list[int]]: ...


class SummaryFrames:
    """A summary's counts as small DataFrames, most frequent first (pandas imported on use).

    >>> from batch_export.summary.counts import Summary
    >>> summary = Summary(job_id="j1", rows=3, failure_codes={"TIMEOUT": 2, "http_403": 1})
    >>> summary.frames.failure_codes.to_dict("records")[0]["resubmit"]
    True
    """

    def __init__(self, summary: Counted) -> None:
        self._summary = summary

    @property
    def failure_codes(self) -> pd.DataFrame:
        """Columns ``error_code``, ``items``, ``share`` (of all rows), and from the table of
        codes ``resubmit`` (whether resubmitting may help) and ``meaning``; null for a code
        the provider does not name."""
        import pandas as pd

        frame = self._frame("error_code", self._summary.failure_codes)
        notes = failure_notes(self._summary.failure_codes).values()
        frame["resubmit"] = pd.array([note["resubmit"] for note in notes], dtype="boolean")
        frame["meaning"] = pd.array([note["meaning"] for note in notes], dtype="str")
        return frame

    @property
    def by_status(self) -> pd.DataFrame:
        """Columns ``status``, ``items``, ``share`` (of all rows)."""
        return self._frame("status", self._summary.by_status)

    @property
    def http_status(self) -> pd.DataFrame:
        """Columns ``http_status`` (an integer), ``items``, ``share`` (of all rows)."""
        frame = self._frame("http_status", self._summary.http_status)
        frame["http_status"] = frame["http_status"].astype("int64")
        return frame

    @property
    def duration_histogram(self) -> pd.DataFrame:
        """Columns ``from_ms``, ``to_ms`` (None for the last bin), ``items``."""
        import pandas as pd

        histogram = self._summary.duration_histogram
        edges = list(histogram.get("edges_ms", []))
        return pd.DataFrame(
            {
                "from_ms": pd.array(edges, dtype="int64"),
                "to_ms": pd.array([*edges[1:], None], dtype="Int64"),
                "items": pd.array(histogram.get("counts", []), dtype="int64"),
            }
        )

    def _frame(self, key: str, counts: dict[str, int]) -> pd.DataFrame:
        import pandas as pd

        rows = max(self._summary.rows, 1)
        return pd.DataFrame(
            {
                key: pd.array(list(counts), dtype="str"),
                "items": pd.array(list(counts.values()), dtype="int64"),
                "share": pd.array([count / rows for count in counts.values()], dtype="float64"),
            }
        )
