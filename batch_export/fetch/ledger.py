"""The ledger that proves a job's results whole: each ``input_index`` once, as many as counted.

The fetcher (:mod:`batch_export.fetch.pages`) shows it every page it reads, by number and with
the page's ``input_index`` values; a page that does not fit (short, too long, an index seen
before) is read again a few times, then fails the read with
:class:`~batch_export.errors.IncompleteResultsError`, which names what is missing or repeated.

:meth:`Ledger.for_job` reads a job's counters as the provider's SDK states them: ``total_urls``
is the number of *accepted* URLs (invalid URLs are not counted), so each accepted URL is one
item, and the submitted list, whose positions the ``input_index`` values are, held the accepted
URLs and the invalid ones. Item counters that do not add up to ``total_urls`` are refused;
a counter missing or null is read as the SDK reads it, 0 (an empty job without counters is
whole when it holds no item, and not provably whole when it holds some).

Example:

    >>> ledger = Ledger("j1", expected=3, page_size=2)
    >>> ledger.accept(1, [0, 1])
    >>> ledger.problems(2, [1])
    ['input_index 1 came more than once']
    >>> ledger.accept(2, [2])
    >>> ledger.prove_whole()
"""

from __future__ import annotations

import itertools
from collections import Counter

from batch_export.errors import IncompleteResultsError, ResponseShapeError
from batch_export.job import JobStatus

__all__ = ["Ledger", "Seen"]

# How many indexes a message names before it says "and N more".
_SHOWN_INDEXES = 10


class Ledger:
    """Which input indexes have been seen, and whether each page fits the counters.

    ``positions`` is the length of the submitted URL list, when known: an ``input_index`` is
    a position in it, so one outside ``0 .. positions - 1`` (or below 0) cannot be an item's.
    """

    def __init__(
        self, job_id: str, expected: int, page_size: int, *, positions: int | None = None
    ) -> None:
        self.job_id = job_id
        self.expected = expected
        self.page_size = page_size
        self.positions = positions
        self.seen = Seen(expected)
        self.repeated: set[int] = set()

    @classmethod
    def for_job(cls, job: JobStatus, page_size: int) -> Ledger:
        """The ledger of a finished ``job``, from its counters (see the module's docstring).

        >>> job = JobStatus(job_id="j1", status="completed", total_urls=2, completed_urls=2,
        ...                 failed_urls=0, cancelled_urls=0, pending_urls=0, invalid_urls=("x",))
        >>> ledger = Ledger.for_job(job, page_size=50)
        >>> ledger.expected, ledger.positions
        (2, 3)
        """
        expected = job.expected_items
        if job.total_urls is not None and job.total_urls != expected:
            raise ResponseShapeError(
                f"The item counters of job {job.job_id} add up to {expected}, but its "
                f"`total_urls` says {job.total_urls} URLs were accepted: its results cannot be "
                "proven whole; rerun later, and report the job id if it persists.",
                job_id=job.job_id,
            )
        return cls(job.job_id, expected, page_size, positions=expected + len(job.invalid_urls))

    def expected_on(self, page: int) -> int:
        return max(0, min(self.page_size, self.expected - (page - 1) * self.page_size))

    def problems(self, page: int, indexes: list[int]) -> list[str]:
        """What is wrong with page number ``page`` holding ``indexes``; empty when nothing."""
        return self._problems(page, indexes, self._repeats(indexes))

    def accept(self, page: int, indexes: list[int]) -> None:
        """Record page number ``page``, or raise if it is still inconsistent."""
        repeats = self._repeats(indexes)
        problems = self._problems(page, indexes, repeats)
        self.repeated |= repeats
        self.seen.update(indexes)
        if problems:
            raise self._error(problems)

    def take(self, page: int, indexes: list[int]) -> list[str]:
        """Record page number ``page`` if nothing is wrong with it; else leave the ledger as it
        was and say what is wrong (:meth:`problems` and :meth:`accept` in one look).

        >>> ledger = Ledger("j1", expected=2, page_size=2)
        >>> ledger.take(1, [0, 0]), len(ledger.seen)
        (['input_index 0 came more than once'], 0)
        >>> ledger.take(1, [0, 1]), len(ledger.seen)
        ([], 2)
        """
        repeats = self._repeats(indexes)
        problems = self._problems(page, indexes, repeats)
        if not problems:
            self.seen.update(indexes)
        return problems

    def _problems(self, page: int, indexes: list[int], repeats: set[int]) -> list[str]:
        found: list[str] = []
        if repeats:
            found.append(f"input_index {_list(sorted(repeats))} came more than once")
        limit = self.positions
        low, high = (min(indexes), max(indexes)) if indexes else (0, -1)
        if low < 0 or (limit is not None and high >= limit):  # looked at closer only then
            outside = sorted(i for i in indexes if i < 0 or (limit is not None and i >= limit))
            where = "0 or more" if limit is None else f"0 to {limit - 1}" if limit else "none"
            found.append(f"input_index {_list(outside)} is not a position ({where})")
        wanted = self.expected_on(page)
        if len(indexes) != wanted:
            found.append(f"page {page} held {len(indexes)} items where {wanted} were expected")
        return found

    def _repeats(self, indexes: list[int]) -> set[int]:
        """The indexes of a page seen before, or more than once on it."""
        unique = set(indexes)
        repeats = self.seen.common(unique)
        if len(unique) != len(indexes):  # counted only when some index is there twice
            repeats |= {i for i, n in Counter(indexes).items() if n > 1}
        return repeats

    def prove_whole(self) -> None:
        """Raise unless every expected item was seen exactly once."""
        if self.repeated or len(self.seen) != self.expected:
            raise self._error([])

    def _error(self, problems: list[str]) -> IncompleteResultsError:
        missing = self._gaps()
        parts = [*problems]
        parts.append(f"expected {self.expected} items by the job's counters, read {len(self.seen)}")
        if self.repeated:
            parts.append(f"repeated input_index {_list(sorted(self.repeated))}")
        if missing:
            parts.append(f"missing input_index {_list(missing)}")
        return IncompleteResultsError(
            f"The results of job {self.job_id} are not provably whole ({'; '.join(parts)}), "
            "even after re-reading: nothing was written. Rerun the export later; if it "
            "persists, report the job id to the API provider.",
            job_id=self.job_id,
            missing=tuple(missing),
            repeated=tuple(sorted(self.repeated)),
        )

    def _gaps(self) -> list[int]:
        """Indexes absent from 0..max seen; a guess only, since invalid URLs may hold places.

        At most as many as are missing: the scan stops there, so it costs no more than the
        counters say, whatever indexes the server sent.
        """
        if len(self.seen) >= self.expected:
            return []
        top = max(self.seen.highest(), self.expected - 1)
        absent = (i for i in range(top + 1) if i not in self.seen)
        return list(itertools.islice(absent, self.expected - len(self.seen)))


class Seen:
    """The input indexes seen so far: a byte each for those the counters allow (0 up to the
    expected count), a set for any other a server sends. 100,000 indexes take 100 KB, where
    a set of ints took 7 MB."""

    def __init__(self, expected: int) -> None:
        self._flags = bytearray(expected)
        self._count = 0
        self._others: set[int] = set()

    def __len__(self) -> int:
        return self._count + len(self._others)

    def __contains__(self, index: int) -> bool:
        if 0 <= index < len(self._flags):
            return bool(self._flags[index])
        return index in self._others

    def common(self, indexes: set[int]) -> set[int]:
        """Those of ``indexes`` seen already."""
        flags, size, others = self._flags, len(self._flags), self._others
        return {i for i in indexes if (flags[i] if 0 <= i < size else i in others)}

    def update(self, indexes: list[int]) -> None:
        flags, size = self._flags, len(self._flags)
        for index in indexes:
            if 0 <= index < size:
                self._count += not flags[index]
                flags[index] = 1
            else:
                self._others.add(index)

    def highest(self) -> int:
        """The highest index seen, or -1."""
        return max(self._flags.rfind(1), max(self._others, default=-1))


def _list(indexes: list[int]) -> str:
    shown = ", ".join(map(str, indexes[:_SHOWN_INDEXES]))
    more = len(indexes) - _SHOWN_INDEXES
    return shown + (f" and {more} more" if more > 0 else "")
