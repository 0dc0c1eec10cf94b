"""Progress on a terminal or in a notebook, through tqdm; silent elsewhere.

:class:`Progress` shows two bars on stderr: while waiting for the job (items finished of
total), then while exporting (items written, pages, rate). ``enabled=None`` lets tqdm decide:
on for a terminal or a notebook, off when stderr is a pipe or a file.

Example:

    >>> progress = Progress(enabled=False)
    >>> progress.start(total_items=10, total_pages=1)
    >>> progress.advance(10)
    >>> progress.close()
"""

from __future__ import annotations

from typing import Any

from batch_export.job import JobStatus

__all__ = ["Progress", "close_bars", "progress_bar"]


def progress_bar(enabled: bool | None, **options: Any) -> Any:
    """A tqdm bar that goes when closed; ``enabled=None`` lets tqdm decide (a terminal or a
    notebook: on; a pipe or a file: off)."""
    # Imported on the first bar: tqdm.auto loads asyncio and importlib.metadata (60 ms before
    # an export's first request, where --quiet shows no bar).
    from tqdm.auto import tqdm

    disable = not enabled if enabled is not None else None
    return tqdm(disable=disable, leave=False, dynamic_ncols=True, **options)


def close_bars(*bars: Any) -> None:
    """Close each bar that is there (None is a bar not shown yet)."""
    for bar in bars:
        if bar is not None:
            bar.close()


class Progress:
    """The waiting and exporting bars of one export."""

    def __init__(self, *, enabled: bool | None = None) -> None:
        self.enabled = enabled
        self._waiting: Any = None
        self._exporting: Any = None

    def poll(self, job: JobStatus) -> None:
        """Show how far an unfinished job has come."""
        if self.enabled is False or (job.is_terminal and self._waiting is None):
            return
        if self._waiting is None:
            self._waiting = progress_bar(
                self.enabled,
                desc=f"waiting for {job.job_id[:12]}",
                unit="item",
                total=job.total_urls,
            )
        self._waiting.total = job.total_urls
        self._waiting.n = job.finished_items
        self._waiting.set_postfix_str(
            f"{job.status}, {job.failed_urls or 0} failed, {job.pending_urls or 0} pending",
            refresh=True,
        )

    def start(self, *, total_items: int | None, total_pages: int) -> None:
        """The job is finished: switch to the export bar."""
        if self._waiting is not None:
            self._waiting.close()
            self._waiting = None
        if self.enabled is not False:  # no bar at all when off (see progress_bar)
            self._exporting = progress_bar(
                self.enabled, desc="exporting", unit="item", total=total_items
            )
        self._pages = total_pages

    def advance(self, items: int) -> None:
        """One page of ``items`` was written."""
        if self._exporting is not None:
            self._exporting.update(items)

    def close(self) -> None:
        """Remove the bars."""
        close_bars(self._waiting, self._exporting)
        self._waiting = self._exporting = None
