"""One attempt of a request over libcurl: handed in, waited for, redirected, judged.

:class:`Exchange` is the client's side of the transport. It hands requests to the process's
libcurl loop (:mod:`batch_export.fetch.curl`) with the client's route (proxy, CA bundle),
header lines and concurrency limit; follows a redirect only to the same origin and only for
GET, within the request's one deadline; and turns what came into a value (an answer of the
expected status, decoded) or into one error of the tree: a refusal
(:mod:`batch_export.fetch.refusal`, whose 429 also lowers the limit) or a transport failure
(:func:`batch_export.fetch.transport.network_error`). Retrying is the client's
(:class:`~batch_export.fetch.client.ApiClient`); :class:`Pending` is a request under way.

Example (a port where nothing listens):

    >>> from batch_export.fetch.throttle import AdaptiveLimit
    >>> exchange = Exchange(
    ...     base_url="http://127.0.0.1:9", api_key="k", timeout=5, max_response_bytes=100,
    ...     gate=AdaptiveLimit(1),
    ... )
    >>> outgoing = Outgoing("GET", {"page": 1}, None, 200)
    >>> url = "http://127.0.0.1:9/v1/batch/j1"
    >>> try:
    ...     exchange.answer(url, outgoing, exchange.submit(outgoing.target(url), outgoing), bytes)
    ... except Exception as error:
    ...     print(error)
    The API at 127.0.0.1:9 dropped or refused the connection (libcurl error 7).
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

from batch_export.errors import RequestRejectedError
from batch_export.fetch.curl import TIMED_OUT, CurlLoop, Request, Transfer
from batch_export.fetch.refusal import refusal
from batch_export.fetch.secret import redact
from batch_export.fetch.throttle import AdaptiveLimit
from batch_export.fetch.transport import network_error, route_for

__all__ = ["MAX_REDIRECTS", "REDIRECTS", "Exchange", "Outgoing", "Pending"]

T = TypeVar("T")

MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
_NETRC_FILES = (".netrc", "_netrc")
_HEADERS = {"Accept": "application/json", "User-Agent": "batch-export"}


@dataclass(frozen=True)
class Outgoing:
    """What one request sends, besides its URL: its method, query, JSON body, success status."""

    method: str
    params: dict[str, Any]
    body: bytes | None
    ok: int

    def target(self, url: str) -> str:
        """``url`` with the query."""
        return f"{url}?{_query(self.params)}" if self.params else url


def _query(params: dict[str, Any]) -> str:
    """``urlencode(params)``; a page's query (names and integers: nothing to quote) without
    its quoting, which cost more than the rest of building a request."""
    if all(
        type(value) is int and type(name) is str and name.isascii() and name.isidentifier()
        for name, value in params.items()
    ):
        return "&".join(f"{name}={value}" for name, value in params.items())
    return urlencode(params)


class Exchange:
    """The transport as one client sees it: its route, its header lines, its limit."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        timeout: float,
        max_response_bytes: int,
        gate: AdaptiveLimit,
    ) -> None:
        self.timeout = timeout
        self.max_response_bytes = max_response_bytes
        self.gate = gate
        self._api_key = api_key
        self._route = route_for(base_url)
        self._loop = CurlLoop.shared()
        self._headers = _headers_for(base_url)
        self._in_flight: set[Transfer] = set()

    def close(self) -> None:
        """Let go of the requests still in flight (libcurl keeps the connections)."""
        for transfer in list(self._in_flight):
            transfer.cancel()

    def submit(self, target: str, outgoing: Outgoing, timeout: float | None = None) -> Transfer:
        """Hand one request to libcurl; it starts when the concurrency limit has room."""
        headers = [*self._headers, f"X-Api-Key: {self._api_key}"]
        if outgoing.body is not None:
            headers += ["Content-Type: application/json", "Expect:"]
        transfer = self._loop.submit(
            Request(
                url=target,
                method=outgoing.method,
                body=outgoing.body,
                headers=tuple(headers),
                timeout=self.timeout if timeout is None else timeout,
                limit=self.max_response_bytes,
                ok=outgoing.ok,
                route=self._route,
                gate=self.gate,
            ),
            on_done=self._in_flight.discard,
        )
        self._in_flight.add(transfer)
        if transfer.done:  # it may have ended before it was added
            self._in_flight.discard(transfer)
        return transfer

    def answer(
        self, url: str, outgoing: Outgoing, transfer: Transfer, decode: Callable[[bytes, str], T]
    ) -> T:
        """Wait for ``transfer`` (following same-origin redirects, GET only, within its one
        deadline) and turn its answer into ``decode(body, url)``, or into an error of the tree."""
        target = outgoing.target(url)
        started = None
        for hops in range(MAX_REDIRECTS + 1):
            _wait(transfer)
            started = started or transfer.started or time.monotonic()
            if transfer.failure is not None:
                raise network_error(
                    transfer.failure,
                    target,
                    timeout=self.timeout,
                    limit=self.max_response_bytes,
                    reading=transfer.status > 0,
                )
            location = transfer.fields.get("location")
            if transfer.status not in REDIRECTS or location is None or outgoing.method != "GET":
                break
            if hops == MAX_REDIRECTS:
                raise RequestRejectedError(
                    f"The API redirected more than {MAX_REDIRECTS} times.", url=target
                )
            target = _same_origin_redirect(target, location, transfer.status)
            left = self.timeout - (time.monotonic() - started)
            if left <= 0:
                raise network_error(TIMED_OUT, target, timeout=self.timeout, limit=0, reading=False)
            transfer = self.submit(target, Outgoing("GET", {}, None, outgoing.ok), left)
        return self._judged(transfer, target, outgoing, decode)

    def _judged(
        self, transfer: Transfer, target: str, outgoing: Outgoing, decode: Callable[[bytes, str], T]
    ) -> T:
        if transfer.status != outgoing.ok:
            if transfer.status == 429:
                self.gate.throttled()
            raise refusal(
                transfer.status,
                transfer.body,
                target,
                retry_after=transfer.fields.get("retry-after"),
                redact=lambda text: redact(text, self._api_key),
            )
        self.gate.succeeded()
        return decode(transfer.body, target)


class Pending(Generic[T]):
    """A request under way (:meth:`batch_export.fetch.client.ApiClient.start`): :meth:`result`
    waits for its answer, retrying and decoding as ``send`` does; :meth:`cancel` lets it go.

    Example:

        >>> from batch_export.fetch.client import ApiClient
        >>> from batch_export.testing import Emulator, generate_job
        >>> with Emulator(jobs=[generate_job(job_id="j1", items=3)], api_key="k") as emu:
        ...     client = ApiClient(base_url=emu.base_url, api_key="k")
        ...     pending = [client.start_page("j1", page=n, page_size=1) for n in (1, 2, 3)]
        ...     [p.result().results[0]["input_index"] for p in pending]
        [0, 1, 2]
    """

    def __init__(self, run: Callable[[], T], first: list[Transfer]) -> None:
        self._run = run
        self._first = first

    def result(self) -> T:
        """The decoded answer, or the error of the last attempt. Call it once."""
        try:
            return self._run()
        finally:
            self.cancel()  # a first attempt not waited for (an error before it) is let go

    def cancel(self) -> None:
        """Let go of the request if its answer has not been waited for."""
        while self._first:
            self._first.pop().cancel()


def _wait(transfer: Transfer) -> None:
    """Wait for ``transfer``; interrupted (Ctrl-C), let it go rather than leave it running."""
    try:
        transfer.wait()
    except BaseException:
        transfer.cancel()
        raise


def _headers_for(base_url: str) -> tuple[str, ...]:
    """The header lines every request carries: with ``~/.netrc``'s login for the host, if any.

    (libcurl adds ``Accept-Encoding`` with every encoding it decodes.)
    """
    headers = dict(_HEADERS)
    netrc = None
    if os.environ.get("NETRC") or any((Path.home() / name).exists() for name in _NETRC_FILES):
        import requests.utils  # for its netrc reading only: it loads slowly

        netrc = requests.utils.get_netrc_auth(base_url)
    if netrc:
        login = base64.b64encode(":".join(netrc).encode("latin-1")).decode("ascii")
        headers["Authorization"] = f"Basic {login}"
    return tuple(f"{name}: {value}" for name, value in headers.items())


def _same_origin_redirect(url: str, location: str, status: int) -> str:
    try:
        target = urljoin(url, location)
        before, after = urlsplit(url), urlsplit(target)
    except ValueError:
        raise RequestRejectedError(
            f"The API redirected (HTTP {status}) to a Location that is not a URL.",
            url=url,
            http_status=status,
        ) from None
    if (before.scheme, before.netloc) != (after.scheme, after.netloc):
        raise RequestRejectedError(
            f"The API redirected to another host ({after.scheme}://{after.hostname}); "
            "batch-export does not send your API key there. If the API has moved, pass the new "
            "--base-url.",
            url=url,
            http_status=status,
        )
    return target
