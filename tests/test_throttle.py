from __future__ import annotations

import threading
import time

import pytest

from batch_export.fetch.throttle import AdaptiveLimit


def test_throttled_halves_and_never_goes_below_one() -> None:
    limit = AdaptiveLimit(16)
    seen = []
    for _ in range(6):
        limit.throttled()
        seen.append(limit.limit)
    assert seen == [8, 4, 2, 1, 1, 1]
    assert limit.lowest == 1


def test_successes_grow_the_limit_back_to_the_ceiling() -> None:
    limit = AdaptiveLimit(4)
    limit.throttled()
    limit.throttled()
    assert limit.limit == 1
    for _ in range(20):
        limit.succeeded()
    assert limit.limit == 4


def test_slots_bound_requests_in_flight() -> None:
    limit = AdaptiveLimit(3)
    limit.throttled()  # now 1
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal peak
        with limit.slot():
            with lock:
                peak = max(peak, limit.in_flight)
            time.sleep(0.01)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 1
    assert limit.in_flight == 0


def test_ceiling_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimit(0)
