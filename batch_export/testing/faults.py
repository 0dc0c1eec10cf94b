"""Faults the emulator injects, decided from a seed so that a run can be replayed.

The decision for request number ``n`` (counted from 1 since the faults were set) comes from
``random.Random(f"{seed}:{n}")`` alone: the same requests in the same order meet the same
faults. Faults hit the status endpoint and the job listing only, and only requests that would
otherwise succeed: a 401, 404 or 422 is answered as such, never replaced by a fault.

The kinds, each labelled in the emulator's request log:

- ``throttle``: 429, with a ``Retry-After`` taken from :attr:`Faults.retry_after`.
- ``server_error``: 500, 502, 503 or 504; some with a gateway's HTML page instead of JSON.
- ``drop``: the headers promise the whole body; part of it is sent, then the connection closes.
- ``truncate``: a clean 200 whose ``Content-Length`` matches a JSON body cut short.

``throttle`` and ``server_error`` answer before the job is looked at, so they do not count as
a poll of a processing job; ``drop`` and ``truncate`` spoil an answer that did.
``latency_ms`` delays every answer; ``reorder`` shuffles a processing job's revealed items on
each poll.

Example:

    >>> faults = Faults(seed=1, throttle_rate=0.5)
    >>> [getattr(faults.decide(n), "kind", None) for n in range(1, 5)]
    [None, 'throttle', 'throttle', None]
    >>> faults.decide(2) == Faults(seed=1, throttle_rate=0.5).decide(2)
    True
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from dataclasses import dataclass

__all__ = ["HTTP_DATE", "SERVER_ERROR_STATUSES", "Fault", "Faults"]

HTTP_DATE = "http-date"
SERVER_ERROR_STATUSES: tuple[int, ...] = (500, 502, 503, 504)
_RATES = ("throttle_rate", "server_error_rate", "drop_rate", "truncate_rate")


@dataclass(frozen=True)
class Fault:
    """One decided fault: its kind and the details drawn for it."""

    kind: str
    status: int = 200
    retry_after: str | None = None
    html: bool = False
    cut: float = 1.0

    def retry_after_header(self, now: float | None = None) -> str | None:
        """The ``Retry-After`` value to send, with ``http-date`` about one second ahead."""
        if self.retry_after != HTTP_DATE:
            return self.retry_after
        moment = math.ceil(time.time() if now is None else now) + 1
        return email.utils.formatdate(moment, usegmt=True)

    def cut_at(self, size: int) -> int:
        """How many bytes of a body of ``size`` to send: at least 1, always fewer than all."""
        return min(max(int(size * self.cut), 1), max(size - 1, 0))


@dataclass(frozen=True)
class Faults:
    """What can go wrong, and how often; rates are shares of requests, adding up to <= 1.

    ``retry_after`` lists the ``Retry-After`` values a 429 may carry: None (no header),
    ``"http-date"`` (a date about 1 s ahead), or any string sent as is (``"0"``, ``"1"``,
    ``"-5"``, ``"86400"``, even ``"soon"``).

    Example:

        >>> Faults(throttle_rate=0.6, drop_rate=0.6)
        Traceback (most recent call last):
        ...
        ValueError: The fault rates add up to 1.2; their sum must be at most 1.
    """

    seed: int = 0
    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    retry_after: tuple[str | None, ...] = (None, "0", "1", HTTP_DATE)
    server_error_rate: float = 0.0
    drop_rate: float = 0.0
    truncate_rate: float = 0.0
    reorder: bool = False

    def __post_init__(self) -> None:
        for name in _RATES:
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate}.")
        total = sum(getattr(self, name) for name in _RATES)
        if total > 1.0 + 1e-9:
            raise ValueError(f"The fault rates add up to {total:g}; their sum must be at most 1.")
        if self.latency_ms < 0:
            raise ValueError(f"latency_ms must be 0 or more, got {self.latency_ms}.")
        if not self.retry_after:
            raise ValueError("retry_after needs at least one value (None for no header).")

    @property
    def active(self) -> bool:
        """True when some request may meet a fault (latency and reorder aside)."""
        return any(getattr(self, name) > 0 for name in _RATES)

    def decide(self, number: int) -> Fault | None:
        """The fault for request ``number`` (1-based), or None: the same for the same inputs."""
        if not self.active:
            return None
        rng = random.Random(f"{self.seed}:{number}")
        draw = rng.random()
        if draw < (edge := self.throttle_rate):
            return Fault("throttle", 429, retry_after=rng.choice(self.retry_after))
        if draw < (edge := edge + self.server_error_rate):
            status = rng.choice(SERVER_ERROR_STATUSES)
            return Fault("server_error", status, html=status != 500 and rng.random() < 0.5)
        if draw < (edge := edge + self.drop_rate):
            return Fault("drop", cut=rng.uniform(0.05, 0.95))
        if draw < edge + self.truncate_rate:
            return Fault("truncate", cut=rng.uniform(0.05, 0.95))
        return None

    def reorder_rng(self, job_id: str, poll: int) -> random.Random:
        """The RNG that orders a processing job's items at one poll."""
        return random.Random(f"{self.seed}:reorder:{job_id}:{poll}")
