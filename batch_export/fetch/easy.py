"""One request on a libcurl easy handle: its options, and the callbacks that bound its answer.

:class:`EasyHandle` is where each bound of a request is set or kept (the loop that drives the
handles is :mod:`batch_export.fetch.curl`):

- **Time**: ``CURLOPT_TIMEOUT_MS`` is the request's whole deadline (connect, headers, body;
  a server that trickles a byte at a time is cut there).
- **Size**: ``CURLOPT_MAXFILESIZE_LARGE`` stops a body past the bound on the wire and, since
  libcurl 8.20, decompressed; the write callback counts the decoded bytes too, and stops an
  answer one byte past the bound (a belt to libcurl's braces), or at once when its
  ``Content-Length`` announces more. Of an error answer only its first
  :data:`ERROR_BODY_PREFIX` bytes are kept, of a redirect nothing; header lines stop at
  256 KiB.
- **Where**: no redirect is followed (the client decides, by its own rule), only http and
  https are spoken, and the proxy is the one the client chose (``""`` for none): libcurl's
  own reading of ``http_proxy`` and ``no_proxy`` is switched off, and a proxy's answer to
  ``CONNECT`` is never taken for the API's.

Callbacks run in the loop's thread and never raise: what they cannot take ends the transfer
(a callback's answer of 0 is a write error to libcurl), and :meth:`EasyHandle.outcome` says
why.

Example:

    >>> handle = EasyHandle()
    >>> request = Request(url="http://127.0.0.1:9/", headers=(), timeout=1, limit=10, route=Route())
    >>> handle.begin(request)
    >>> handle.on_header(b"HTTP/1.1 200 OK\\r\\n"), handle.on_header(b"Content-Length: 11\\r\\n")
    (None, 0)
    >>> handle.outcome(pycurl.E_WRITE_ERROR)
    (b'', Failure(code=0, reason='announced', announced=11))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pycurl

__all__ = ["ERROR_BODY_PREFIX", "TIMED_OUT", "EasyHandle", "Failure", "Gate", "Request", "Route"]

ERROR_BODY_PREFIX = 64 * 2**10
# Header lines kept for the client; the others are only counted.
_KEPT = frozenset({b"location", b"retry-after", b"content-length"})
_MAX_HEADER_BYTES = 256 * 2**10  # libcurl's own bound is 300 KB
_MAX_FIELD = 1000
# Chunks handed to the write callback: fewer calls into Python for a page.
_BUFFER_BYTES = 512 * 2**10
_SUPPRESS_CONNECT_HEADERS = 265  # CURLOPT_SUPPRESS_CONNECT_HEADERS (pycurl has no name for it)


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


class EasyHandle:
    """A libcurl easy handle, reused from request to request, with its callbacks' state."""

    __slots__ = ("chunks", "curl", "fields", "header_bytes", "limit", "ok", "route", "size",
                 "status", "stop")  # fmt: skip

    def __init__(self) -> None:
        self.curl = pycurl.Curl()
        self.route: Route | None = None
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

    def begin(self, request: Request) -> None:
        """Set the handle up for ``request``; options that do not change are set once."""
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
        """The body and the failure of the request that ended with libcurl's ``code``."""
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

    def finish(self) -> tuple[int, dict[str, str]]:
        """The answer's status and kept fields; the handle is ready for the next request."""
        status, fields = self.status, self.fields
        self._clear()
        return status, fields
