"""One thread drives every request in flight through libcurl: no thread per connection.

:class:`CurlLoop` owns a ``pycurl.CurlMulti`` and the one thread that drives it
(``socket_action`` over an epoll selector, woken through a socket pair when a request is
handed in). libcurl connects, keeps connections alive, reads and decompresses the answers
outside the interpreter; Python sees an answer's header lines and its body in a few large
chunks, which land in a buffer that goes as it is to the page scan and the Arrow reader.
Callers hand in a :class:`Request` and get a :class:`Transfer` at once; :meth:`Transfer.wait`
blocks until it is done (Ctrl-C interrupts the wait).

What the server could otherwise push is bounded here, for every request:

- **Time**: ``CURLOPT_TIMEOUT_MS`` is the request's whole deadline (connect, headers, body;
  a server that trickles a byte at a time is cut there).
- **Size**: ``CURLOPT_MAXFILESIZE_LARGE`` stops a body past the bound on the wire and, since
  libcurl 8.20, decompressed; the write callback counts the decoded bytes too, and stops a
  200 answer one byte past the bound (a belt to libcurl's braces). Of an error answer only
  its first :data:`ERROR_BODY_PREFIX` bytes are kept, of a redirect nothing.
- **Where**: no redirect is followed (the client decides, by its own rule), only http and
  https are spoken, and the proxy is the one the client chose (``""`` for none): libcurl's
  own reading of ``http_proxy`` and ``no_proxy`` is switched off.

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
from dataclasses import dataclass
from typing import Protocol

import pycurl

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

ERROR_BODY_PREFIX = 64 * 2**10
# Header lines kept for the client; the others are only counted.
_KEPT = frozenset({b"location", b"retry-after", b"content-length"})
_MAX_HEADER_BYTES = 256 * 2**10  # libcurl's own bound is 300 KB
_MAX_FIELD = 1000
# Chunks handed to the write callback: fewer calls into Python for a page.
_BUFFER_BYTES = 512 * 2**10
_IDLE_HANDLES = 64
# While requests run, and for _LINGER after, the loop turns at least every _LOOK seconds to
# start what came in meanwhile, rather than be woken for each request.
_LOOK = 0.002
_LINGER = 0.1
_CONNECTIONS_KEPT = 64
_SUPPRESS_CONNECT_HEADERS = 265  # CURLOPT_SUPPRESS_CONNECT_HEADERS (pycurl has no name for it)
_IN = selectors.EVENT_READ
_OUT = selectors.EVENT_WRITE


@dataclass(frozen=True, kw_only=True)
class Route:
    """How requests reach the server: the proxy (``""``: none) and the CA certificates."""

    proxy: str = ""
    ca_file: str | None = None
    ca_dir: str | None = None


class Gate(Protocol):
    """How many requests may be in flight: the loop starts one only when ``try_acquire()``
    says yes, and calls ``release()`` when it ends (see
    :class:`batch_export.fetch.throttle.AdaptiveLimit`)."""

    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...


@dataclass(frozen=True, kw_only=True)
class Request:
    """One request: its full URL, header lines, deadline in seconds, and the bound on the
    body of an answer of status ``ok`` (the one answer whose body is read whole)."""

    url: str
    headers: tuple[str, ...]
    timeout: float
    limit: int
    route: Route
    method: str = "GET"
    body: bytes | None = None
    ok: int = 200
    gate: Gate | None = None


@dataclass(frozen=True)
class Failure:
    """Why a transfer gave no usable answer: libcurl's error ``code`` (0 when it was ours),
    ``reason`` (``"curl"``, ``"too_large"``, ``"announced"``, ``"cancelled"``), and for
    ``"announced"`` the length the answer announced."""

    code: int
    reason: str = "curl"
    announced: int | None = None


TIMED_OUT = Failure(pycurl.E_OPERATION_TIMEDOUT)


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


class _Handle:
    """A libcurl easy handle, reused from transfer to transfer, with its callbacks' state."""

    __slots__ = ("chunks", "curl", "fields", "header_bytes", "limit", "ok", "route", "size",
                 "status", "stop", "transfer")  # fmt: skip

    def __init__(self) -> None:
        self.curl = pycurl.Curl()
        self.route: Route | None = None
        self.transfer: Transfer | None = None
        self._clear()

    def _clear(self) -> None:
        self.status = 0
        self.fields: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.header_bytes = 0
        self.limit = 0
        self.ok = 200
        self.stop: Failure | str | None = None

    def begin(self, transfer: Transfer) -> None:
        """Set the handle up for ``transfer``; options that do not change are set once."""
        request = transfer.request
        curl = self.curl
        if self.route != request.route:
            curl.reset()
            self._set_constant_options(request.route)
            self.route = request.route
        curl.setopt(pycurl.URL, request.url)
        curl.setopt(pycurl.HTTPHEADER, list(request.headers))
        curl.setopt(pycurl.TIMEOUT_MS, max(1, int(request.timeout * 1000)))
        # libcurl's own bound also stops an error answer's body, which is read in part only.
        curl.setopt(pycurl.MAXFILESIZE_LARGE, max(request.limit, ERROR_BODY_PREFIX))
        if request.method != "GET":
            if request.body is not None:
                curl.setopt(pycurl.POSTFIELDS, request.body)
            curl.setopt(pycurl.CUSTOMREQUEST, request.method)
            self.route = None  # a handle that sent another method is set up anew next time
        self._clear()
        self.limit, self.ok = request.limit, request.ok
        self.transfer = transfer

    def _set_constant_options(self, route: Route) -> None:
        curl = self.curl
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.ACCEPT_ENCODING, "")  # every encoding libcurl decodes
        curl.setopt(pycurl.BUFFERSIZE, _BUFFER_BYTES)
        curl.setopt(pycurl.WRITEFUNCTION, self.on_body)
        curl.setopt(pycurl.HEADERFUNCTION, self.on_header)
        # The proxy chosen by the client, or none: never libcurl's reading of the environment.
        curl.setopt(pycurl.PROXY, route.proxy)
        curl.setopt(pycurl.NOPROXY, "")
        curl.setopt(_SUPPRESS_CONNECT_HEADERS, 1)  # a proxy's CONNECT answer is not the API's
        if route.ca_file:
            curl.setopt(pycurl.CAINFO, route.ca_file)
        if route.ca_dir:
            curl.setopt(pycurl.CAPATH, route.ca_dir)

    def on_header(self, line: bytes) -> int | None:
        """One header line (a status line starts each answer, 1xx ones included)."""
        self.header_bytes += len(line)
        if self.header_bytes > _MAX_HEADER_BYTES:
            return 0  # libcurl ends the transfer with a write error
        if line[:5] == b"HTTP/":
            code = line.split(None, 2)[1:2]
            self.status = int(code[0]) if code and code[0].isdigit() and len(code[0]) == 3 else 0
            self.fields = {}
            return None
        name, colon, value = line.partition(b":")
        key = name.strip().lower()
        if not colon or key not in _KEPT:
            return None
        text = value.strip().decode("latin-1")[:_MAX_FIELD]
        field = key.decode()
        self.fields[field] = f"{self.fields[field]}, {text}" if field in self.fields else text
        announced = field == "content-length" and self.status == self.ok and text.isdigit()
        if announced and int(text) > self.limit:
            self.stop = Failure(0, "announced", int(text))
            return 0
        return None

    def on_body(self, chunk: bytes) -> int | None:
        """A piece of the body, decoded: kept within the bounds, else the transfer stops."""
        if self.status == self.ok:
            self.size += len(chunk)
            if self.size > self.limit:
                self.stop = Failure(0, "too_large")
                return 0
            self.chunks.append(chunk)
            return None
        if 300 <= self.status < 400 and "location" in self.fields:
            self.stop = "enough"  # a redirect's body is never read
            return 0
        room = ERROR_BODY_PREFIX - self.size
        self.chunks.append(chunk[:room])
        self.size += min(room, len(chunk))
        if self.size >= ERROR_BODY_PREFIX:
            self.stop = "enough"
            return 0
        return None

    def outcome(self, code: int) -> tuple[bytes, Failure | None]:
        """The body and the failure of the transfer that ended with libcurl's ``code``."""
        body = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        if isinstance(self.stop, Failure):
            return b"", self.stop
        if code == 0 or self.stop == "enough":
            return body, None
        if self.status >= 200 and self.status != self.ok:
            # An error answer cut short (or past libcurl's bound): its status says enough.
            return body, None
        if code == pycurl.E_FILESIZE_EXCEEDED:
            return b"", Failure(code, "too_large")
        return b"", Failure(code)

    def finish(self) -> tuple[Transfer | None, int, dict[str, str]]:
        """Let go of the transfer; the handle is ready for the next."""
        transfer, status, fields = self.transfer, self.status, self.fields
        self.transfer = None
        self._clear()
        return transfer, status, fields


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
        self._multi = pycurl.CurlMulti()
        self._multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        self._multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        self._multi.setopt(pycurl.M_MAXCONNECTS, _CONNECTIONS_KEPT)
        self._selector = selectors.DefaultSelector()
        self._wake_in, self._wake_out = socket.socketpair()
        self._wake_in.setblocking(False)
        self._wake_out.setblocking(False)
        self._selector.register(self._wake_in, _IN, None)
        self._inbox: collections.deque[tuple[str, Transfer]] = collections.deque()
        self._waiting: collections.deque[Transfer] = collections.deque()
        self._running: dict[Transfer, _Handle] = {}
        self._handles: dict[pycurl.Curl, _Handle] = {}
        self._idle: list[_Handle] = []
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

    def _run(self) -> None:
        while True:
            try:
                self._turn()
            except Exception:  # libcurl's own failure, or a bug: nothing may wait forever
                self._fail_all()

    def _fail_all(self) -> None:
        """End every transfer in flight with a failure, whatever state libcurl is in."""
        for transfer, handle in list(self._running.items()):
            del self._running[transfer]
            with contextlib.suppress(pycurl.error):
                self._multi.remove_handle(handle.curl)
            handle.finish()
            self._complete(transfer, 0, {}, b"", Failure(pycurl.E_FAILED_INIT))

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
                self._end_handle(self._handles[curl], 0)
            for curl, code, _ in failed:
                self._end_handle(self._handles[curl], code)
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
            handle.begin(transfer)
        except pycurl.error as error:  # an option libcurl refused (a URL it cannot take)
            handle.finish()
            self._idle.append(handle)
            self._complete(transfer, 0, {}, b"", Failure(_code(error)))
            return
        self._running[transfer] = handle
        transfer.started = time.monotonic()
        self._multi.add_handle(handle.curl)

    def _cancel(self, transfer: Transfer) -> None:
        if transfer in self._running:
            self._end(transfer, pycurl.E_ABORTED_BY_CALLBACK, Failure(0, "cancelled"))
        elif not transfer.done:  # cancelled before it started
            with contextlib.suppress(ValueError):
                self._waiting.remove(transfer)
            self._complete(transfer, 0, {}, b"", Failure(0, "cancelled"))

    def _new_handle(self) -> _Handle:
        handle = _Handle()
        self._handles[handle.curl] = handle
        return handle

    def _end_handle(self, handle: _Handle, code: int) -> None:
        if handle.transfer is not None:
            self._end(handle.transfer, code)

    def _end(self, transfer: Transfer, code: int, failure: Failure | None = None) -> None:
        handle = self._running.pop(transfer)
        self._multi.remove_handle(handle.curl)
        body, failed = handle.outcome(code)
        _, status, fields = handle.finish()
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
