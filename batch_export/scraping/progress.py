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

from tqdm.auto import tqdm

__all__ = ["ScrapeProgress"]


class ScrapeProgress:
    """The batches and items bars of one scrape; safe to advance from several threads."""

    def __init__(self, *, enabled: bool | None = None) -> None:
        self.enabled = enabled
        self._lock = threading.Lock()
        self._batches: Any = None
        self._items: Any = None

    def _bar(self, **options: Any) -> Any:
        disable = not self.enabled if self.enabled is not None else None
        return tqdm(disable=disable, leave=False, dynamic_ncols=True, **options)

    def start(self, *, batches: int, items: int) -> None:
        """A round of ``batches`` batches carrying ``items`` URLs begins."""
        with self._lock:
            self.close()
            self._batches = self._bar(desc="batches", unit="batch", total=batches)
            self._items = self._bar(desc="items", unit="item", total=items)

    def batch_done(self, *, items: int) -> None:
        """One batch's job was exported, with ``items`` rows."""
        with self._lock:
            if self._batches is not None:
                self._batches.update(1)
                self._items.update(items)

    def close(self) -> None:
        """Remove the bars."""
        for bar in (self._batches, self._items):
            if bar is not None:
                bar.close()
        self._batches = self._items = None
