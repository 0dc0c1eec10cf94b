"""What the stores' native libraries say, caught and told in our words.

deltalake (Rust), pyarrow (C++), DuckDB and libpq write to the process's standard error
(file descriptor 2) on their own: a Rust panic in a worker thread with its ``stack
backtrace:``, an Arrow C++ line about a file it could not close. A scheduler that reads
``--log-format json`` lines chokes on them, and they say nothing a user acts on that the
job's own sentence does not. Two things make them speak through us:

- :func:`captured_stderr` points descriptor 2 at a pipe while a block runs; a thread reads
  it and hands what came, a burst at a time, to a callback. :func:`native_events` is that for
  the sync (``sync()`` runs in it, for the command and a notebook alike): each burst becomes
  one ``native_output`` event, :func:`native_event` (how many lines, and the first ones).
  Python's own ``sys.stderr`` still reaches the real standard error meanwhile.
- :func:`native_reason` puts a native library's error in a few words, the same for every
  store: a full disk is "the disk is full", a read-only one "the file system is read-only",
  whatever each library calls them.

Example:

    >>> native_reason(OSError(28, "No space left on device"))
    'the disk is full (No space left on device)'
    >>> native_reason(RuntimeError("Generic error: Read-only file system (os error 30)"))
    'the file system is read-only (Generic error: Read-only file system (os error 30))'
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TextIO

__all__ = [
    "MAX_LINES",
    "CapturedStderr",
    "OnOutput",
    "captured_stderr",
    "is_disk_full",
    "native_condition",
    "native_event",
    "native_events",
    "native_reason",
]

OnOutput = Callable[[list[str], int], None]
MAX_LINES = 20  # of a burst, handed on; the others are counted
_MAX_LINE_CHARS = 300
_PAUSE_SECONDS = 0.2  # a burst ends when nothing more came for this long
_MAX_REASON_CHARS = 300
# Descriptor 2 is the process's: one capture at a time (a second sync at once, in another
# thread, runs without one of its own; what is printed meanwhile goes to the first's events).
_CAPTURING = threading.Lock()

# Each library's words for the same two conditions (errno, Rust's "os error N", DuckDB's and
# PostgreSQL's own phrases).
_DISK_FULL = re.compile(
    r"No space left on device|os error 28\b|disk (?:is )?full|could not extend file|"
    r"Disk quota exceeded|os error 122\b",
    re.IGNORECASE,
)
_READ_ONLY = re.compile(r"Read-only file system|os error 30\b", re.IGNORECASE)


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` says that the disk (or the quota) is full."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return bool(_DISK_FULL.search(str(error)))


def native_condition(error: BaseException) -> str | None:
    """ "the disk is full" or "the file system is read-only" when ``error`` says so, in
    whichever library's words; else None."""
    if is_disk_full(error):
        return "the disk is full"
    if isinstance(error, OSError) and error.errno == errno.EROFS:
        return "the file system is read-only"
    return "the file system is read-only" if _READ_ONLY.search(str(error)) else None


def native_reason(error: BaseException, *, said: str | None = None) -> str:
    """What went wrong in a native call, in a few words on one line (``said``, when the
    caller has a better line than the error's text); a full or read-only disk said as such,
    with the library's own words after it."""
    if said is None and isinstance(error, OSError) and error.strerror:
        said = error.strerror  # without "[Errno 28]"
    if said is None:  # one line, without the colours delta-rs gives its error chains
        said = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split())
    text = said or type(error).__name__
    if len(text) > _MAX_REASON_CHARS:
        text = text[: _MAX_REASON_CHARS - 3] + "..."
    condition = native_condition(error)
    return f"{condition} ({text})" if condition else text


def native_event(lines: list[str], count: int) -> dict[str, object]:
    """The fields of the ``native_output`` event for a burst: how many lines, the first ones.

    >>> native_event(["thread 'tokio-rt-worker' panicked at ...", "stack backtrace:"], 161)
    {'lines': 161, 'text': "thread 'tokio-rt-worker' panicked at ...\\nstack backtrace:\\n..."}
    """
    more = "\n..." if count > len(lines) else ""
    return {"lines": count, "text": "\n".join(lines) + more}


class CapturedStderr:
    """What :func:`captured_stderr` gives: the real stderr, and where bursts go."""

    def __init__(self, stderr: TextIO) -> None:
        self.stderr = stderr
        self._callback: OnOutput | None = None
        self._early: list[tuple[list[str], int]] = []
        self._lock = threading.Lock()

    def hand_to(self, on_output: OnOutput) -> None:
        """Hand every burst to ``on_output(first_lines, line_count)``, those before too."""
        with self._lock:
            self._callback, early, self._early = on_output, self._early, []
        for lines, count in early:
            _hand_on(on_output, lines, count)

    def burst(self, lines: list[str], count: int) -> None:
        with self._lock:
            callback = self._callback
            if callback is None:
                self._early.append((lines, count))
                return
        _hand_on(callback, lines, count)


def native_events(
    on_event: Callable[[str, dict[str, Any]], None] | None,
) -> contextlib.AbstractContextManager[None]:
    """While the block runs, what native code writes on descriptor 2 comes to ``on_event``
    as ``native_output`` events (:func:`native_event`), from a thread of its own; the last
    one before the block ends. Without ``on_event``, nothing is caught.

    >>> import ctypes
    >>> events = []
    >>> with native_events(lambda name, fields: events.append((name, fields))):
    ...     _ = ctypes.CDLL(None).write(2, b"a line from C\\n", 14)
    >>> events
    [('native_output', {'lines': 1, 'text': 'a line from C'})]
    """
    if on_event is None:
        return contextlib.nullcontext()
    return _native_events(on_event)


@contextlib.contextmanager
def _native_events(on_event: Callable[[str, dict[str, Any]], None]) -> Iterator[None]:
    with captured_stderr() as captured:
        captured.hand_to(lambda lines, count: on_event("native_output", native_event(lines, count)))
        yield


@contextlib.contextmanager
def captured_stderr() -> Iterator[CapturedStderr]:
    """Point file descriptor 2 at a pipe until the block ends.

    What native code writes meanwhile goes, a burst at a time (at most :data:`MAX_LINES`
    lines, each cut at 300 characters), from a thread of its own, to the callback given to
    :meth:`CapturedStderr.hand_to`; the last burst before the block ends. Python's
    ``sys.stderr``, when it writes to descriptor 2, is the real standard error meanwhile (the
    yielded ``stderr``), so that our own messages are not caught. While another block holds
    the capture, this one catches nothing.
    """
    if not _CAPTURING.acquire(blocking=False):
        yield CapturedStderr(sys.stderr)
        return
    try:
        with _descriptor_2_piped() as captured:
            yield captured
    finally:
        _CAPTURING.release()


@contextlib.contextmanager
def _descriptor_2_piped() -> Iterator[CapturedStderr]:
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 (closed, as under pythonw): nothing to catch
        yield CapturedStderr(sys.stderr)
        return
    reading, writing = os.pipe()
    os.dup2(writing, 2)
    os.close(writing)
    # Python's own stderr keeps its stream when it is not descriptor 2 (click's test runner,
    # a notebook); otherwise it is swapped for the real descriptor, kept aside, until the end.
    previous = sys.stderr
    ours = not _writes_descriptor_2(previous)
    real = (
        previous
        if ours
        else open(  # noqa: SIM115 - closed below, without closing the descriptor it copies
            saved, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False
        )
    )
    sys.stderr = real
    captured = CapturedStderr(real)
    drain = threading.Thread(
        target=_drain, args=(reading, captured.burst), name="native-stderr", daemon=True
    )
    drain.start()
    try:
        yield captured
    finally:
        with contextlib.suppress(OSError, ValueError):
            real.flush()
        os.dup2(saved, 2)  # the pipe's last writer goes: the drain sees its end
        drain.join(timeout=10)
        sys.stderr = previous
        if not ours:
            real.close()
        os.close(saved)


def _writes_descriptor_2(stream: TextIO) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both
        return False


def _drain(reading: int, on_output: OnOutput) -> None:
    """Read the pipe until its end; hand each burst of lines on."""
    pending = b""
    lines: list[str] = []
    count = 0
    try:
        while True:
            ready, _, _ = select.select([reading], [], [], _PAUSE_SECONDS)
            if not ready:
                if count:
                    _hand_on(on_output, lines, count)
                    lines, count = [], 0
                continue
            chunk = os.read(reading, 1 << 16)
            if not chunk:
                break
            *whole, pending = (pending + chunk).split(b"\n")
            for raw in whole:
                line = raw.decode("utf-8", "replace").rstrip()
                if not line:
                    continue
                count += 1
                if len(lines) < MAX_LINES:
                    lines.append(line[:_MAX_LINE_CHARS])
    finally:
        if pending.strip():
            count += 1
            if len(lines) < MAX_LINES:
                lines.append(pending.decode("utf-8", "replace").rstrip()[:_MAX_LINE_CHARS])
        if count:
            _hand_on(on_output, lines, count)
        os.close(reading)


def _hand_on(on_output: OnOutput, lines: list[str], count: int) -> None:
    # The callback's failure must not end the drain: descriptor 2 would then fill and block.
    with contextlib.suppress(Exception):
        on_output(lines, count)
