"""How many requests may be in flight at once, lowered when the API says 429.

An additive-increase, multiplicative-decrease limit, as TCP does it: every 429 halves the
number of requests allowed in flight (never below one), and every success adds a fraction back,
so after a storm the pool grows again to its ceiling without hammering the API.

Example:

    >>> limit = AdaptiveLimit(8)
    >>> limit.throttled(); limit.limit
    4
    >>> with limit.slot():
    ...     limit.in_flight
    1
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["AdaptiveLimit"]


class AdaptiveLimit:
    """A semaphore whose size moves between 1 and ``ceiling`` with the API's answers."""

    def __init__(self, ceiling: int) -> None:
        if ceiling < 1:
            raise ValueError(f"the ceiling must be at least 1, got {ceiling}")
        self.ceiling = ceiling
        self._limit = float(ceiling)
        self._in_flight = 0
        self._lowest = ceiling
        self._condition = threading.Condition()

    @property
    def limit(self) -> int:
        """How many requests may be in flight now."""
        return max(1, int(self._limit))

    @property
    def lowest(self) -> int:
        """The lowest limit reached so far: 1 after a long 429 storm."""
        return self._lowest

    @property
    def in_flight(self) -> int:
        """How many requests hold a slot now."""
        return self._in_flight

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the allowed slots while a request is in flight."""
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def acquire(self) -> None:
        """Take a slot, waiting until one is free; :meth:`release` gives it back (from any
        thread: libcurl's loop frees the slot of a request when it ends)."""
        with self._condition:
            self._condition.wait_for(lambda: self._in_flight < self.limit)
            self._in_flight += 1

    def try_acquire(self) -> bool:
        """Take a slot if one is free now; never waits."""
        with self._condition:
            if self._in_flight >= self.limit:
                return False
            self._in_flight += 1
            return True

    def release(self) -> None:
        """Give back a slot taken with :meth:`acquire` or :meth:`try_acquire`."""
        with self._condition:
            self._in_flight -= 1
            self._condition.notify_all()

    def throttled(self) -> None:
        """The API answered 429: halve the limit."""
        with self._condition:
            self._limit = max(1.0, self._limit / 2)
            self._lowest = min(self._lowest, self.limit)

    def succeeded(self) -> None:
        """A request went through: grow back by about one slot per window of successes."""
        with self._condition:
            if self._limit < self.ceiling:
                self._limit = min(float(self.ceiling), self._limit + 1 / self._limit)
                self._condition.notify_all()
