"""Work handed to a thread of its own: in order, bounded, and its errors come back."""

from __future__ import annotations

import threading
import time

import pytest

from batch_export.writers.handoff import Handoff


def test_items_are_worked_in_order_on_another_thread() -> None:
    seen: list[tuple[int, str]] = []
    with Handoff(lambda item: seen.append((item, threading.current_thread().name))) as h:
        for number in range(50):
            h.put(number)
    assert [item for item, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"handoff"}


def test_an_error_in_the_work_reaches_the_caller_at_the_next_put() -> None:
    def work(item: int) -> None:
        if item == 3:
            raise ValueError("disk full")

    with pytest.raises(ValueError, match="disk full"), Handoff(work, depth=1) as h:
        for number in range(100):
            h.put(number)
            time.sleep(0.001)


def test_an_error_in_the_last_items_is_raised_when_the_block_ends() -> None:
    def work(item: int) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"), Handoff(work) as h:
        h.put(1)


def test_the_callers_own_error_wins_and_the_work_is_waited_for() -> None:
    done: list[int] = []
    with pytest.raises(RuntimeError, match="fetch failed"), Handoff(done.append) as h:
        h.put(1)
        raise RuntimeError("fetch failed")
    assert done == [1]


def test_at_most_depth_items_wait() -> None:
    release = threading.Event()
    started = threading.Event()

    def work(item: int) -> None:
        started.set()
        release.wait(5)

    with Handoff(work, depth=2) as h:
        h.put(0)
        started.wait(5)
        h.put(1)
        h.put(2)
        blocked = threading.Thread(target=h.put, args=(3,))
        blocked.start()
        blocked.join(0.3)
        assert blocked.is_alive(), "a third waiting item was taken"
        release.set()
        blocked.join(5)
