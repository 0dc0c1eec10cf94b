"""One thread drives every request in flight through libcurl: no thread per connection.

:class:`CurlLoop` owns a ``pycurl.CurlMulti`` and the one thread that drives it
(``socket_action`` over an epoll selector). libcurl connects, keeps connections alive, reads
and decompresses the answers outside the interpreter; Python sees an answer's header lines and
its body in a few large chunks, which land in a buffer that goes as it is to the page scan and
the Arrow reader. Callers hand in a :class:`Request` and get a :class:`Transfer` at once;
:meth:`Transfer.wait` blocks until it is done (Ctrl-C interrupts the wait). Each request is
bounded in time and size on its easy handle (:mod:`batch_export.fetch.easy`).

A request waits in the loop until its :class:`Gate` (the client's concurrency limit, lowered
on 429) has room, and starts the moment another ends, in the order they came. The loop is
woken (through a socket pair) only when it sleeps: awake, while requests run and for a moment
after, it looks at what came in every :data:`_LOOK` seconds, which costs less than a wake-up
for each request.

Example (against a port where nothing listens):

    >>> transfer = CurlLoop.shared().submit(
    ...     Request(url="http://127.0.0.1:9/", headers=(), timeout=5.0, limit=100, route=Route())
    ... )
    >>> transfer.wait()
    True
    >>> transfer.failure.code == pycurl.E_COULDNT_CONNECT, transfer.status
    (True, 0)
"""

from __future__ import annotations

import _thread
import collections
import contextlib
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable

import pycurl

from batch_export.fetch.easy import (
    ERROR_BODY_PREFIX,
    TIMED_OUT,
    EasyHandle,
    Failure,
    Gate,
    Request,
    Route,
)

__all__ = [
    "ERROR_BODY_PREFIX",
    "TIMED_OUT",
    "CurlLoop",
    "Failure",
    "Gate",
    "Request",
    "Route",
    "Transfer",
]

_IDLE_HANDLES = 64
# While requests run, and for _LINGER after, the loop turns at least every _LOOK seconds to
# start what came in meanwhile, rather than be woken for each request.
_LOOK = 0.005
_LINGER = 0.1
_CONNECTIONS_KEPT = 64
_IN = selectors.EVENT_READ
_OUT = selectors.EVENT_WRITE


class Transfer:
    """A request handed to the loop. After :meth:`wait`: ``status`` (0 if none came),
    ``fields`` (Location, Retry-After, Content-Length, by lower-case name), ``body``, and
    ``failure`` (None for an answer, which may be an error answer's prefix)."""

    __slots__ = ("_done", "_loop", "_on_done", "body", "failure", "fields", "gated", "request",
                 "started", "status")  # fmt: skip

    def __init__(
        self, request: Request, loop: CurlLoop, on_done: Callable[[Transfer], None]
    ) -> None:
        self.request = request
        self.status = 0
        self.fields: dict[str, str] = {}
        self.body = b""
        self.failure: Failure | None = None
        self.started: float | None = None
        self.gated = False  # holds a place of its gate
        self._loop = loop
        self._on_done = on_done
        self._done = _thread.allocate_lock()
        self._done.acquire()

    @property
    def done(self) -> bool:
        """True once the transfer has an answer or a failure."""
        return not self._done.locked()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the transfer is done (or ``timeout`` seconds pass: then False); a
        signal (Ctrl-C) interrupts the wait."""
        if not self._done.acquire(timeout=-1 if timeout is None else timeout):
            return False
        self._done.release()
        return True

    def cancel(self) -> None:
        """Stop the transfer if it is not done: its connection is closed, its slot freed."""
        if not self.done:
            self._loop.post("cancel", self)

    def _complete(
        self, status: int, fields: dict[str, str], body: bytes, failure: Failure | None
    ) -> None:
        self.status, self.fields, self.body, self.failure = status, fields, body, failure
        self._done.release()
        self._on_done(self)


class CurlLoop:
    """A ``CurlMulti`` and the daemon thread that drives it; thread-safe :meth:`submit`.

    A request waits in the loop until its :class:`Gate` (the client's concurrency limit) has
    room: the moment one request ends, the next one starts, in the order they came, without
    a thread of the caller's having to be there.
    """

    _shared: CurlLoop | None = None
    _shared_pid = 0
    _shared_lock = threading.Lock()

    def __init__(self) -> None:
        self._multi = self._new_multi()
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self._selector.register(self._wake_in, _IN, None)
        self._inbox: collections.deque[tuple[str, Transfer]] = collections.deque()
        self._waiting: collections.deque[Transfer] = collections.deque()
        self._running: dict[Transfer, EasyHandle] = {}
        self._handles: dict[pycurl.Curl, EasyHandle] = {}
        self._owners: dict[EasyHandle, Transfer] = {}
        self._idle: list[EasyHandle] = []
        self._timer_at: float | None = None
        self._woken = False
        self._asleep = False
        self._busy_at = 0.0
        self._thread = threading.Thread(target=self._run, name="curl", daemon=True)
        self._thread.start()

    @classmethod
    def shared(cls) -> CurlLoop:
        """The process's loop, started on first use (and again in a forked child)."""
        with cls._shared_lock:
            if cls._shared is None or cls._shared_pid != os.getpid():
                cls._shared, cls._shared_pid = cls(), os.getpid()
            return cls._shared

    def submit(
        self, request: Request, on_done: Callable[[Transfer], None] = lambda transfer: None
    ) -> Transfer:
        """Start ``request`` once its gate has room; ``on_done(transfer)`` runs in the loop's
        thread when it is done (it must not raise)."""
        transfer = Transfer(request, self, on_done)
        self.post("start", transfer)
        return transfer

    def post(self, what: str, transfer: Transfer) -> None:
        """Hand the loop's thread something to do; wake it if it sleeps."""
        self._inbox.append((what, transfer))
        # Waking the loop costs the caller its CPU on a busy machine (a millisecond or two
        # a wake-up, measured on two shared cores), so only a loop asleep is woken: awake, it
        # looks at its inbox within _LOOK. The loop says it sleeps, then looks at the inbox
        # once more before it does; this looks after the append: nothing is left unread.
        if self._asleep:
            self._wake()

    def _wake(self) -> None:
        if self._woken:  # one wake-up at a time (see _drain_wake_ups)
            return
        self._woken = True
        # A full socket pair holds wake-ups enough: the loop will look.
        with contextlib.suppress(OSError):
            self._wake_out.send(b"\0")

    def _new_multi(self) -> pycurl.CurlMulti:
        multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        multi.setopt(pycurl.M_MAXCONNECTS, _CONNECTIONS_KEPT)
        return multi

    def _run(self) -> None:
        while True:
            try:
                self._turn()
            except Exception:  # libcurl's own failure, or a bug: nothing may wait forever
                self._start_over()

    def _start_over(self) -> None:
        """After a failure of the loop itself: every request handed in ends with a failure
        (the client retries it), and libcurl's state is made anew, whatever state it was in."""
        failed = Failure(pycurl.E_FAILED_INIT)
        for transfer, handle in list(self._running.items()):
            with contextlib.suppress(pycurl.error):
                self._multi.remove_handle(handle.curl)
            self._complete(transfer, 0, {}, b"", failed)
        while self._inbox:
            self._waiting.append(self._inbox.popleft()[1])
        for transfer in self._waiting:
            if not transfer.done:
                self._complete(transfer, 0, {}, b"", failed)
        for handle in self._handles.values():
            handle.curl.close()
        for key in list(self._selector.get_map().values()):
            if key.data is not None:
                self._selector.unregister(key.fd)
        with contextlib.suppress(pycurl.error):
            self._multi.close()
        self._running, self._owners, self._handles = {}, {}, {}
        self._waiting.clear()
        self._idle.clear()
        self._timer_at = None
        self._multi = self._new_multi()
        time.sleep(_LOOK)  # a failure that comes back at once must not spin the loop

    def _turn(self) -> None:
        timeout = self._timeout()
        if timeout is None or timeout > _LOOK:
            self._asleep = True
            if self._inbox:  # came in before it said so: see post()
                timeout = 0.0
        events = self._selector.select(timeout)
        self._asleep = False
        for key, mask in events:
            if key.data is None:
                self._drain_wake_ups()
                continue
            flags = (pycurl.CSELECT_IN if mask & _IN else 0) | (
                pycurl.CSELECT_OUT if mask & _OUT else 0
            )
            self._multi.socket_action(key.fd, flags)
        if self._timer_at is not None and time.monotonic() >= self._timer_at:
            self._timer_at = None
            self._multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        self._collect()
        while self._inbox:
            what, transfer = self._inbox.popleft()
            if what == "start":
                self._waiting.append(transfer)
            else:
                self._cancel(transfer)
        self._start_waiting()

    def _timeout(self) -> float | None:
        """How long the next select may wait: until libcurl's timer, and no more than _LOOK
        while requests run or ran a moment ago (more may come: see post())."""
        now = time.monotonic()
        timeout = None if self._timer_at is None else max(0.0, self._timer_at - now)
        if self._running or self._waiting:
            self._busy_at = now
        if now - self._busy_at < _LINGER:
            timeout = _LOOK if timeout is None else min(timeout, _LOOK)
        return timeout

    def _collect(self) -> None:
        """End the transfers libcurl says are done."""
        while True:
            queued, done, failed = self._multi.info_read()
            for curl in done:
                self._end(self._owners[self._handles[curl]], 0)
            for curl, code, _ in failed:
                self._end(self._owners[self._handles[curl]], code)
            if not queued:
                return

    def _drain_wake_ups(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_in.recv(4096):
                pass
        # Cleared once the bytes are read, and before the inbox is: a submit that sees the flag
        # set has its request read; one that sees it clear sends a byte that the next select
        # finds. (Cleared before the reading, a byte sent meanwhile would be read with the
        # flag left set, and no submit would wake the loop again.)
        self._woken = False

    def _start_waiting(self) -> None:
        """Start the waiting transfers whose gate has room, in the order they came."""
        if not self._waiting:
            return
        shut: set[int] = set()  # gates found full in this pass
        still: collections.deque[Transfer] = collections.deque()
        for transfer in self._waiting:
            gate = transfer.request.gate
            if gate is not None and (id(gate) in shut or not gate.try_acquire()):
                shut.add(id(gate))
                still.append(transfer)
                continue
            transfer.gated = gate is not None
            self._start(transfer)
        self._waiting = still

    def _start(self, transfer: Transfer) -> None:
        handle = self._idle.pop() if self._idle else self._new_handle()
        try:
            handle.begin(transfer.request)
        except pycurl.error as error:  # an option libcurl refused (a URL it cannot take)
            handle.finish()
            self._idle.append(handle)
            self._complete(transfer, 0, {}, b"", Failure(_code(error)))
            return
        self._running[transfer] = handle
        self._owners[handle] = transfer
        transfer.started = time.monotonic()
        self._multi.add_handle(handle.curl)

    def _cancel(self, transfer: Transfer) -> None:
        if transfer in self._running:
            self._end(transfer, pycurl.E_ABORTED_BY_CALLBACK, Failure(0, "cancelled"))
        elif not transfer.done:  # cancelled before it started
            with contextlib.suppress(ValueError):
                self._waiting.remove(transfer)
            self._complete(transfer, 0, {}, b"", Failure(0, "cancelled"))

    def _new_handle(self) -> EasyHandle:
        handle = EasyHandle()
        self._handles[handle.curl] = handle
        return handle

    def _end(self, transfer: Transfer, code: int, failure: Failure | None = None) -> None:
        handle = self._running.pop(transfer)
        del self._owners[handle]
        self._multi.remove_handle(handle.curl)
        body, failed = handle.outcome(code)
        status, fields = handle.finish()
        if len(self._idle) < _IDLE_HANDLES:
            self._idle.append(handle)
        else:
            del self._handles[handle.curl]
            handle.curl.close()
        self._complete(
            transfer, status, fields, body if failure is None else b"", failure or failed
        )

    def _complete(
        self,
        transfer: Transfer,
        status: int,
        fields: dict[str, str],
        body: bytes,
        failure: Failure | None,
    ) -> None:
        if transfer.gated and transfer.request.gate is not None:
            transfer.gated = False
            transfer.request.gate.release()
        transfer._complete(status, fields, body, failure)

    def _on_socket(self, what: int, fd: int, multi: object, data: object) -> None:
        """libcurl says which events of socket ``fd`` it waits for now."""
        try:
            if what == pycurl.POLL_REMOVE:
                self._selector.unregister(fd)
                return
            events = (_IN if what & pycurl.POLL_IN else 0) | (_OUT if what & pycurl.POLL_OUT else 0)
            try:
                self._selector.modify(fd, events, fd)
            except KeyError:
                self._selector.register(fd, events, fd)
        except (KeyError, ValueError, OSError):
            pass  # a socket closed under us: libcurl notices it on its own

    def _on_timer(self, milliseconds: int) -> None:
        """libcurl wants :meth:`_turn` to act on its timeouts in ``milliseconds`` (-1: never)."""
        self._timer_at = None if milliseconds < 0 else time.monotonic() + milliseconds / 1000


def _code(error: pycurl.error) -> int:
    code = error.args[0] if error.args else 0
    return code if isinstance(code, int) else 0
