"""Which URL sent in a batch each item answers: from ``input_index`` back to an input line.

A batch sends URLs in the order of its lines. The API numbers items by ``input_index``, and
drops the URLs it finds invalid (listing them in ``invalid_urls``). Whether ``input_index``
counts positions in the list *sent* (the API's documentation) or among the URLs *accepted*
(the SDK's ``total_urls``, and the emulator) is not settled, and it matters only when some
URLs were refused: :class:`BatchJoin` then takes the reading under which every item's ``url``
is the URL sent at its position, and refuses a job that fits neither.

Example:

    >>> join = BatchJoin(["https://a.example/", "nope", "https://b.example/"], ["nope"])
    >>> join.refused_positions(), join.position(1, "https://b.example/")
    ([1], 2)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from batch_export.errors import ResponseShapeError
from batch_export.text import shown

__all__ = ["BatchJoin"]


class BatchJoin:
    """The map from a job's ``input_index`` to the position of a URL in the batch sent."""

    def __init__(self, sent: Sequence[str], invalid: Sequence[str]) -> None:
        self.sent = list(sent)
        left = Counter(invalid)
        self._accepted: list[int] = []
        self._refused: list[int] = []
        for position, url in enumerate(self.sent):
            if left[url] > 0:
                left[url] -= 1
                self._refused.append(position)
            else:
                self._accepted.append(position)
        self.fits = not +left  # every refused URL is one that was sent
        self._reading: str | None = None if self._refused else "accepted"

    @property
    def accepted(self) -> int:
        """How many URLs the API accepted."""
        return len(self._accepted)

    def refused_positions(self) -> list[int]:
        """Positions (in the list sent) of the URLs the API refused as invalid."""
        return list(self._refused)

    def matches(self, items: Sequence[tuple[int, object]]) -> bool:
        """Whether ``(input_index, url)`` pairs fit this batch under some reading (and settle
        the reading when they tell it)."""
        return self._settle(items) is not None

    def position(self, index: int, url: object) -> int:
        """The position sent of the item ``input_index`` ``index`` with ``url``."""
        reading = self._reading or self._settle([(index, url)])
        at = self._at(reading, index) if reading is not None else None
        if at is None:
            raise ResponseShapeError(
                f"Item input_index {index} (url {shown(url)}) is no URL of the batch sent "
                f"({len(self.sent)} URLs, {len(self._refused)} refused as invalid)."
            )
        return at

    def settle(self, items: Sequence[tuple[int, object]]) -> None:
        """Settle the reading from a job's items; refuse items that fit no reading."""
        if self._reading is None and self._settle(items) is None:
            raise ResponseShapeError(
                f"The job's items do not match the batch sent: {len(self.sent)} URLs, "
                f"{len(self._refused)} refused as invalid, under either numbering."
            )

    def _settle(self, items: Sequence[tuple[int, object]]) -> str | None:
        readings = ("accepted", "sent") if self._reading is None else (self._reading,)
        for reading in readings:
            if all(self._fits(reading, index, url) for index, url in items):
                if self._reading is None and items:
                    self._reading = reading
                return reading
        return None

    def _fits(self, reading: str, index: int, url: object) -> bool:
        at = self._at(reading, index)
        # With nothing refused, the numbering is plain: a URL the API rewrote still fits.
        return at is not None and (not self._refused or self.sent[at] == url)

    def _at(self, reading: str, index: int) -> int | None:
        if reading == "accepted":
            return self._accepted[index] if 0 <= index < len(self._accepted) else None
        if 0 <= index < len(self.sent) and index not in self._refused:
            return index
        return None
