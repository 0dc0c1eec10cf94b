"""Below the client: the connection pool, the deadline of each request, bounded reading.

:class:`~batch_export.fetch.client.ApiClient` asks for pages; this module is how the bytes come,
with every bound the server could otherwise push:

- **Time.** A request (connect, headers, body, redirects) has a total deadline. Socket
  timeouts bound each read only, and a server that trickles a byte every half second would
  pass them forever, so a watchdog thread shuts the socket down when the deadline passes.
- **Size.** A body is read in chunks, decompressed as it comes (urllib3 bounds each step of
  the decompressor), and refused as soon as the wire bytes or the decompressed bytes pass
  the bound: a gzip bomb or an answer that never ends costs at most the bound.
- **Where the key goes.** A loopback target never goes through a proxy; everything else
  follows the environment as requests would (``HTTPS_PROXY``, ``NO_PROXY``, the CA bundle).

Example:

    >>> pool = pool_for("http://127.0.0.1:9", pool_size=2)
    >>> type(pool).__name__
    'PoolManager'
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import threading
import time
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    DecodeError,
    DependencyWarning,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)
from urllib3.exceptions import HTTPError as Urllib3Error

from batch_export.errors import InvalidInputError, ResponseShapeError, TransientApiError

__all__ = [
    "ERROR_BODY_PREFIX",
    "TRANSPORT_ERRORS",
    "Deadline",
    "is_loopback",
    "network_error",
    "pool_for",
    "read_body",
]

ERROR_BODY_PREFIX = 64 * 2**10
# What urllib3, http.client, zlib and the OS raise while a request is sent or read.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    Urllib3Error,
    OSError,
    ValueError,
    EOFError,
    http.client.HTTPException,
    zlib.error,
)
_CHUNK = 2**20
_LOOPBACK_NAMES = frozenset({"localhost", "::1", "[::1]"})


def is_loopback(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``: the key never leaves the machine."""
    if not host:
        return False
    host = host.lower()
    if host in _LOOPBACK_NAMES:
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and len(p) <= 3 for p in parts)


class Deadline:
    """The total time one request may take; past it, its socket is shut down.

    Used as ``with Deadline.watch(seconds) as deadline:`` around a request and the reading of
    its body; ``deadline.expired`` then tells a cut connection from a dropped one.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sock: socket.socket | None = None

    @classmethod
    @contextmanager
    def watch(cls, seconds: float) -> Iterator[Deadline]:
        """Watch the requests made by this thread inside the block."""
        deadline = cls(seconds)
        _CURRENT.deadline = deadline
        _REAPER.add(deadline)
        try:
            yield deadline
        finally:
            _CURRENT.deadline = None
            _REAPER.remove(deadline)

    def remaining(self) -> float:
        """Seconds left, never below a millisecond (a socket timeout of 0 means 'no wait')."""
        return max(0.001, self.at - time.monotonic())

    def _attach(self, sock: socket.socket) -> None:
        with _REAPER.lock:
            self._sock = sock
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:  # called with the reaper's lock held
        self.expired = True
        if self._sock is not None:
            _shut(self._sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to stop
        sock.shutdown(socket.SHUT_RDWR)


class _Reaper:
    """One daemon thread that shuts down the sockets of requests past their deadline."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self._watched: set[Deadline] = set()
        self._wake_at = float("inf")
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self.lock:
            self._watched.add(deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            if deadline.at < self._wake_at:
                self.lock.notify()

    def remove(self, deadline: Deadline) -> None:
        with self.lock:
            self._watched.discard(deadline)

    def _run(self) -> None:
        with self.lock:
            while True:
                now = time.monotonic()
                for deadline in [d for d in self._watched if d.at <= now]:
                    deadline._expire()
                    self._watched.discard(deadline)
                self._wake_at = min((d.at for d in self._watched), default=float("inf"))
                wait = self._wake_at - now + 0.005 if self._watched else None
                self.lock.wait(wait)


_REAPER = _Reaper()
_CURRENT = threading.local()


class _Watched:
    """A connection that hands its socket to the thread's :class:`Deadline` when it waits."""

    sock: socket.socket | None

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline: Deadline | None = getattr(_CURRENT, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline._attach(self.sock)
        return super().getresponse(*args, **kwargs)  # type: ignore[misc]


def _watch_pools(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """``manager`` with connections that the request deadline can cut."""
    watched: dict[str, Any] = {}
    pool_cls: Any
    for scheme, pool_cls in manager.pool_classes_by_scheme.items():
        connection_cls = type(
            f"Watched{pool_cls.ConnectionCls.__name__}", (_Watched, pool_cls.ConnectionCls), {}
        )
        watched[scheme] = type(
            f"Watched{pool_cls.__name__}", (pool_cls,), {"ConnectionCls": connection_cls}
        )
    manager.pool_classes_by_scheme = watched
    return manager


def pool_for(base_url: str, *, pool_size: int) -> urllib3.PoolManager:
    """One keep-alive pool for ``base_url``, configured from the environment as requests is.

    Every request goes to the same origin (redirects elsewhere are refused), so the proxy and
    the CA bundle are read once, for ``base_url``. A loopback ``base_url`` bypasses any proxy.
    """
    tls: dict[str, Any] = {}
    if base_url.startswith("https:"):
        import requests.utils  # for its helpers only, and only where they apply: it loads slowly

        bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
        tls = {"ca_cert_dir" if Path(bundle).is_dir() else "ca_certs": bundle}
    options: dict[str, Any] = {"num_pools": 1, "maxsize": pool_size, **tls}
    proxy = None
    if not is_loopback(urlsplit(base_url).hostname) and _proxies_set():
        import requests.utils

        proxy = requests.utils.select_proxy(base_url, requests.utils.get_environ_proxies(base_url))
    if not proxy:
        return _watch_pools(urllib3.PoolManager(**options))
    if proxy.lower().startswith("socks"):
        try:
            with warnings.catch_warnings():  # urllib3 warns before it fails without PySocks
                warnings.simplefilter("ignore", DependencyWarning)
                from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise InvalidInputError(
                f"The proxy {without_credentials(proxy)} is a SOCKS proxy: install PySocks "
                "(pip install 'urllib3[socks]') to use it."
            ) from None
        return _watch_pools(SOCKSProxyManager(proxy, **options))
    import requests.utils

    user, password = requests.utils.get_auth_from_url(proxy)
    proxy_headers = None
    if user:
        proxy_headers = urllib3.util.make_headers(proxy_basic_auth=f"{user}:{password}")
    return _watch_pools(urllib3.ProxyManager(proxy, proxy_headers=proxy_headers, **options))


def _proxies_set() -> bool:
    """Whether the environment names any proxy (``HTTPS_PROXY``, ``all_proxy``, ...)."""
    return any(name.lower().endswith("_proxy") and value for name, value in os.environ.items())


def without_credentials(url: str) -> str:
    """``url`` reduced to scheme, host and port: no user, password, path or query."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(an unreadable URL)"
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{port}" if port else "")


def where(url: str) -> str:
    """The host and port of ``url``, for messages: never a user, password or query."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(an unreadable URL)"
    return (parts.hostname or "") + (f":{port}" if port else "")


def read_body(
    response: urllib3.BaseHTTPResponse, url: str, *, limit: int, deadline: Deadline
) -> bytes:
    """The body of a 200 answer, at most ``limit`` bytes on the wire and decompressed.

    Past the bound, :class:`ResponseShapeError` (a retry would get the same); a connection
    that fails or passes the deadline midway is a :class:`TransientApiError`. Frees the
    connection: back to the pool when the body was read whole, else closed.
    """
    whole = False
    try:
        length = response.length_remaining
        if length is not None and length > limit:
            raise _too_large(url, limit, f"it announces {length} bytes")
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read(_CHUNK):
            size += len(chunk)
            if size > limit or response.tell() > limit:
                raise _too_large(url, limit, "it went on past that")
            chunks.append(chunk)
        whole = True
        return b"".join(chunks)
    except TRANSPORT_ERRORS as error:
        raise network_error(error, url, reading=True, deadline=deadline) from None
    finally:
        _free(response, whole)


def read_prefix(response: urllib3.BaseHTTPResponse, *, limit: int = ERROR_BODY_PREFIX) -> bytes:
    """At most ``limit`` bytes of an error answer's body; what cannot be read is left out.

    An error body is only shown as an excerpt, so a body cut short or undecodable is not
    worth a failure of its own: the status says what happened.
    """
    chunks: list[bytes] = []
    size = 0
    whole = False
    try:
        while size < limit and (chunk := response.read(min(_CHUNK, limit - size))):
            chunks.append(chunk)
            size += len(chunk)
        whole = size < limit
    except TRANSPORT_ERRORS:
        pass
    finally:
        _free(response, whole)
    return b"".join(chunks)[:limit]


def discard(response: urllib3.BaseHTTPResponse) -> None:
    """Let go of an answer whose body we do not want (a redirect): close, never drain."""
    _free(response, whole=False)


def _free(response: urllib3.BaseHTTPResponse, whole: bool) -> None:
    try:
        if not whole:
            response.close()  # unread bytes must not reach the next request on this connection
        response.release_conn()
    except TRANSPORT_ERRORS:
        pass  # the connection is gone already; the pool opens a new one


def _too_large(url: str, limit: int, what: str) -> ResponseShapeError:
    return ResponseShapeError(
        f"The answer from {where(url)} is larger than the bound of "
        f"{limit / 2**20:g} MB ({what}): if a page of the job is really that large, raise "
        "--max-response-mb (max_response_bytes in Python).",
        url=url,
    )


def network_error(
    error: BaseException, url: str, *, reading: bool = False, deadline: Deadline | None = None
) -> TransientApiError:
    """The transient error for a failure below HTTP: timeouts, drops, bodies cut short."""
    if deadline is not None and deadline.expired:
        what = f"did not answer within the request deadline of {deadline.seconds:g} s"
    elif isinstance(error, ReadTimeoutError | socket.timeout):
        what = "did not answer in time"
    elif isinstance(error, NewConnectionError):
        what = "dropped or refused the connection"
    elif isinstance(error, ConnectTimeoutError):
        what = "could not connect in time"
    elif isinstance(error, DecodeError | zlib.error):
        what = "sent a body that could not be decoded"
    elif isinstance(error, ProtocolError | OSError | http.client.HTTPException):
        what = "cut the answer short" if reading else "dropped or refused the connection"
    else:
        what = "failed at the HTTP level"
    return TransientApiError(
        f"The API at {where(url)} {what} ({type(error).__name__}).",
        code="network",
        url=url,
    )
