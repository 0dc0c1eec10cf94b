"""Hand work to a thread of its own through a short queue: writing beside fetching.

Encoding a Parquet row group takes tens of milliseconds; done in the thread that pulls the
pages, it would stall the fetching for as long (the pages in flight fill their window, and
the connections wait). :class:`Handoff` runs the writer's ``write`` on its own thread, fed
batch by batch, and gives back its error, if any, where the caller is.

Example:

    >>> written = []
    >>> with Handoff(written.append) as handoff:
    ...     for number in range(3):
    ...         handoff.put(number)
    >>> written
    [0, 1, 2]
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["Handoff"]

T = TypeVar("T")
_END = object()
_POLL_SECONDS = 0.1


class Handoff(Generic[T]):
    """Calls ``work(item)`` on a thread of its own for each item :meth:`put`, in order.

    At most ``depth`` items wait. Leaving the ``with`` block waits for the work to finish; an
    error in the work is raised by the next :meth:`put` or at the end of the block.
    """

    def __init__(self, work: Callable[[T], None], *, depth: int = 2) -> None:
        self._work = work
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="handoff", daemon=True)

    def __enter__(self) -> Handoff[T]:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is KeyboardInterrupt:
            return  # the process is on its way out: do not wait for the work
        self._send(_END)
        self._thread.join()
        if kind is None and self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        """Queue ``item`` for the work; raise the work's error if it failed."""
        self._send(item)

    def _send(self, item: object) -> None:
        while True:
            if self._error is not None and item is not _END:
                raise self._error
            try:
                self._queue.put(item, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                if not self._thread.is_alive():
                    return

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._work(item)  # type: ignore[arg-type]
                except BaseException as error:  # handed back to the caller's thread
                    self._error = error
