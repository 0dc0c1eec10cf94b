"""Progress of a scrape: batches done of all, and items exported, on a terminal or a notebook.

Two tqdm bars (a widget in Jupyter, text on a terminal, nothing when stderr is a pipe unless
asked): batches whose job was exported, and the items read so far.

Example:

    >>> progress = ScrapeProgress(enabled=False)
    >>> progress.start(batches=3, items=2_500)
    >>> progress.batch_done(items=1_000)
    >>> progress.close()
"""

from __future__ import annotations

import threading
from typing import Any

from batch_export.summary.progress import close_bars, progress_bar

__all__ = ["ScrapeProgress"]


class ScrapeProgress:
    """The batches and items bars of one scrape; safe to advance from several threads."""

    def __init__(self, *, enabled: bool | None = None) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._batches: Any = None
        self._items: Any = None

    def start(self, *, batches: int, items: int) -> None:
        """A round of ``batches`` batches carrying ``items`` URLs begins."""
        with self._lock:
            self.close()
            self._batches = progress_bar(self.enabled, desc="batches", unit="batch", total=batches)
            self._items = progress_bar(self.enabled, desc="items", unit="item", total=items)

    def batch_done(self, *, items: int) -> None:
        """One batch's job was exported, with ``items`` rows."""
        with self._lock:
            if self._batches is not None:
                self._batches.update(1)
                self._items.update(items)

    def close(self) -> None:
        """Remove the bars."""
        close_bars(self._batches, self._items)
        self._batches = self._items = None
