"""The HTTP boundary: requests over libcurl, the retry policy, and the key kept secret.

Every request to the API goes through :class:`ApiClient`. It translates libcurl's and the
server's failures into the error tree (:mod:`batch_export.errors`) here and nowhere else,
retries what may pass (:mod:`batch_export.fetch.attempts`, under the policy of
:mod:`batch_export.fetch.retry`), lowers concurrency on 429
(:mod:`batch_export.fetch.throttle`), and bounds what the server controls
(:mod:`batch_export.fetch.transport`): a total deadline per request (``timeout``, also the bound of
each read) and a maximum answer size, on the wire and decompressed (``max_response_bytes``,
64 MiB by default; the CLI's ``--max-response-mb``).

The API key:

- A key with a control character (a trailing CR or LF included) or a non-ASCII character is
  refused at once with :class:`InvalidInputError`, whose message does not show it.
- It is never sent in clear text to a host other than loopback: a plain ``http://`` base URL
  elsewhere is refused (:class:`InsecureTransportError`) unless ``allow_insecure_http``; a
  loopback base URL never goes through a proxy (``HTTP_PROXY`` is ignored for it), and an
  https one goes through a proxy only inside a CONNECT tunnel. It is never sent along a
  redirect to another origin.
- Every error the client raises is scrubbed of it: any run of the text that contains 8 or more
  consecutive characters of the key (the whole key, when it is shorter than 8 characters, in
  what the server wrote) becomes ``<hidden>``, in ``str(error)``, ``error.message``, ``url``,
  ``code`` and ``correlation_id``, before the text is cut to an excerpt.

It speaks HTTP through libcurl (:mod:`batch_export.fetch.curl`, through
:mod:`batch_export.fetch.exchange`): one thread drives every request in flight, and an answer
is read and decompressed outside the interpreter (a page of 112 KB costs about 0.27 ms of CPU
in all, 0.17 ms of it in libcurl's thread, where urllib3's threads took 0.4 to 0.6 ms, holding
the GIL that the export needs). :meth:`ApiClient.start` hands a request to libcurl and returns
at once, so one thread keeps many requests in flight. What requests would read from the environment
(``HTTPS_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ``~/.netrc``) is read once, with
requests' own helpers, imported only when the environment has something for them to read.

Example:

    >>> from batch_export.fetch.client import ApiClient
    >>> client = ApiClient(base_url="http://127.0.0.1:9", api_key="k")
    >>> client
    ApiClient(base_url='http://127.0.0.1:9', api_key=<hidden>)
    >>> try:
    ...     ApiClient(base_url="http://127.0.0.1:9", api_key="secret-key\\n")
    ... except InvalidInputError as error:
    ...     print(error.exit_code, "secret" in str(error))
    2 False
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable
from typing import Any, TypedDict, TypeVar, Unpack, overload
from urllib.parse import urljoin, urlsplit

from batch_export.api import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REQUEST_TIMEOUT,
    MAX_LIST_PAGE_SIZE,
)
from batch_export.errors import (
    InsecureTransportError,
    InvalidInputError,
    ResponseShapeError,
    TransientApiError,
)
from batch_export.fetch.attempts import Attempts, RequestStats
from batch_export.fetch.exchange import Exchange, Outgoing, Pending
from batch_export.fetch.job_id import check_job_id
from batch_export.fetch.retry import RetryPolicy
from batch_export.fetch.secret import Secret, check_api_key, redact
from batch_export.fetch.throttle import AdaptiveLimit
from batch_export.fetch.transport import is_loopback
from batch_export.job import ResultPage, decode_json
from batch_export.text import shown

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "ApiClient",
    "Pending",
    "RequestStats",
    "check_api_key",
    "decode_json",
    "redact",
]

T = TypeVar("T")


class RequestOptions(TypedDict, total=False):
    """The options of one request (:meth:`ApiClient.send`, :meth:`ApiClient.start`).

    ``params`` (the query), ``json_body`` (sent as JSON), ``ok`` (the status that is a
    success, 200 unless given), ``retry`` (False: one attempt, for a request that may have made
    something on the server), and ``job_id`` and ``page`` (the context of its errors).
    """

    params: dict[str, Any] | None
    json_body: Any
    ok: int
    retry: bool
    job_id: str | None
    page: int | None


class ApiClient:
    """A client of the status endpoints, safe to share between threads.

    Options are keyword-only; ``base_url`` and ``api_key`` default to the environment
    (``SCRAPER_API_BASE_URL``, ``GEONODE_SCRAPER_API_KEY``). ``timeout`` bounds each request
    as a whole (connect, headers, body) and each read within it; ``max_response_bytes``
    bounds an answer's body, on the wire and decompressed. ``sleep`` is injected so that
    retry tests take no time.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        concurrency: int = DEFAULT_CONCURRENCY,
        allow_insecure_http: bool = False,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[TransientApiError, float], None] | None = None,
    ) -> None:
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if self._api_key:
            check_api_key(self._api_key)
        # What the road hides from the data: every run of 8 of the key's characters.
        self.secret = Secret(self._api_key)
        self.base_url = _check_base_url(
            base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
            allow_insecure_http=allow_insecure_http,
        )
        self.retry = retry or RetryPolicy()
        self.timeout = _positive("timeout", timeout, "--request-timeout")
        self.max_response_bytes = int(
            _positive("max_response_bytes", max_response_bytes, "--max-response-mb")
        )
        self.limit = AdaptiveLimit(concurrency)
        self._exchange = Exchange(
            base_url=self.base_url,
            api_key=self._api_key,
            timeout=self.timeout,
            max_response_bytes=self.max_response_bytes,
            gate=self.limit,
        )
        self._attempts = Attempts(
            self._exchange, api_key=self._api_key, policy=self.retry, sleep=sleep, on_retry=on_retry
        )
        self.stats: RequestStats = self._attempts.stats

    def __repr__(self) -> str:
        return f"ApiClient(base_url={self.base_url!r}, api_key=<hidden>)"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Let go of this client's requests still in flight (libcurl keeps the connections)."""
        self._exchange.close()

    def redact(self, text: str) -> str:
        """``text`` with this client's API key, and any long piece of it, hidden."""
        return redact(text, self._api_key, short_too=False)

    @overload
    def fetch_page(self, job_id: str, *, page: int, page_size: int) -> ResultPage: ...

    @overload
    def fetch_page(
        self, job_id: str, *, page: int, page_size: int, decode: Callable[[bytes, str, int], T]
    ) -> T: ...

    def fetch_page(
        self,
        job_id: str,
        *,
        page: int,
        page_size: int,
        decode: Callable[[bytes, str, int], Any] | None = None,
    ) -> Any:
        """``GET /v1/batch/{job_id}?page=&page_size=``, retried: the one request for a job's
        status and its result pages.

        ``decode(content, url, page)`` turns the 200 body into a page object, inside each
        attempt (the fetching threads pass the page scan); without it the page is parsed as
        a :class:`ResultPage` that keeps its bytes.
        """
        return self.start_page(job_id, page=page, page_size=page_size, decode=decode).result()

    def start_page(
        self,
        job_id: str,
        *,
        page: int,
        page_size: int,
        decode: Callable[[bytes, str, int], T] | None = None,
    ) -> Pending[Any]:
        """:meth:`fetch_page` under way: the request is in flight when this returns, and
        ``result()`` waits for the page (see :meth:`start`)."""
        job_id = check_job_id(job_id)  # the path must be safe, whoever calls
        read = decode or result_pages(job_id, page_size=page_size)
        return self.start(
            "GET",
            f"/v1/batch/{job_id}",
            params={"page": page, "page_size": page_size},
            decode=lambda content, url: read(content, url, page),
            job_id=job_id,
            page=page,
        )

    def list_jobs(
        self,
        *,
        page: int,
        page_size: int = MAX_LIST_PAGE_SIZE,
        filters: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """``GET /v1/batch/jobs?page=&page_size=`` with the listing's ``filters``
        (``status``, ``start_date``, ``end_date``): one page of the account's jobs, retried,
        its ``jobs`` list checked. The one request of the listing: the sync and the scrape's
        search for a lost answer both read the account through it."""
        query: dict[str, Any] = {"page": page, "page_size": page_size, **(filters or {})}
        body = self.get_json("/v1/batch/jobs", query, page=page)
        if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
            raise ResponseShapeError(
                f"Expected a `jobs` list from GET /v1/batch/jobs page {page}, got {shown(body)}.",
                page=page,
            )
        return body

    def get_json(
        self,
        path: str,
        params: dict[str, Any],
        *,
        job_id: str | None = None,
        page: int | None = None,
    ) -> Any:
        """GET ``path`` and decode its JSON body, applying the retry policy."""
        return self.get_decoded(path, params, decode_json, job_id=job_id, page=page)

    def get_decoded(
        self,
        path: str,
        params: dict[str, Any],
        decode: Callable[[bytes, str], T],
        *,
        job_id: str | None = None,
        page: int | None = None,
    ) -> T:
        """GET ``path`` and turn its 200 body into a value with ``decode(body, url)``, retried.

        ``decode`` runs inside each attempt, so a body it cannot read (it raises
        :class:`TransientApiError`, as :func:`decode_json` does for JSON cut short) is asked
        for again like a dropped connection. Errors leave without the key in their text.
        """
        return self.send("GET", path, params=params, decode=decode, job_id=job_id, page=page)

    def send(
        self,
        method: str,
        path: str,
        *,
        decode: Callable[[bytes, str], T] = decode_json,
        **options: Unpack[RequestOptions],
    ) -> T:
        """Any request to the API, the one road for all of them: ``method path?params``, with
        ``json_body`` sent as JSON; an answer of status ``ok`` is decoded, any other raised.

        ``retry=False`` makes one attempt: for a request that may have made something on the
        server (``POST /v1/batch``), whether to send it again is the caller's decision.
        Only GET follows a (same-origin) redirect.
        """
        return self.start(method, path, decode=decode, **options).result()

    def start(
        self,
        method: str,
        path: str,
        *,
        decode: Callable[[bytes, str], T] = decode_json,
        **options: Unpack[RequestOptions],
    ) -> Pending[T]:
        """:meth:`send`, under way: the request is handed to libcurl before this returns (it
        starts once the concurrency limit has room), and :meth:`Pending.result` waits for it,
        retries it and decodes it. One thread can so keep many requests in flight.
        """
        if not self._api_key:
            raise InvalidInputError(
                f"No API key: pass --api-key or set {API_KEY_ENV} in the environment."
            )
        json_body = options.get("json_body")
        body = None if json_body is None else json.dumps(json_body).encode("utf-8")
        outgoing = Outgoing(method, options.get("params") or {}, body, options.get("ok", 200))
        return self._attempts.start(
            _joined(self.base_url, path),
            outgoing,
            decode,
            retry=options.get("retry", True),
            job_id=options.get("job_id"),
            page=options.get("page"),
        )


def result_pages(job_id: str, *, page_size: int) -> Callable[[bytes, str, int], ResultPage]:
    """The decoder of a job's status answers as :class:`ResultPage` objects that keep their
    bytes (the default of :meth:`ApiClient.fetch_page`)."""

    def result_page(content: bytes, url: str, page: int) -> ResultPage:
        body = decode_json(content, url)
        return ResultPage.from_response(
            body, job_id=job_id, page=page, page_size=page_size, content=content
        )

    return result_page


@functools.lru_cache(maxsize=256)
def _joined(base_url: str, path: str) -> str:
    """The URL of ``path`` under ``base_url`` (the same few paths, asked for every request)."""
    return urljoin(base_url + "/", path.lstrip("/"))


def _positive(name: str, value: float, option: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"Expected a number for {name} ({option}), got {value!r}.")
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(
            f"Expected a positive, finite number for {name} ({option}), got {value!r}."
        )
    return value


def _check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    try:
        parts = urlsplit(base_url)
        scheme, host = parts.scheme, parts.hostname
        parts.port  # noqa: B018  (a port that is not a number raises here, not mid-request)
    except ValueError:
        scheme, host = "", None
    if scheme not in ("http", "https") or not host:
        raise InvalidInputError(
            f"Base URL {base_url[:200]!r} is not an http(s) URL: pass --base-url like "
            f"{DEFAULT_BASE_URL} (or set {BASE_URL_ENV})."
        )
    if scheme == "http" and not is_loopback(host) and not allow_insecure_http:
        raise InsecureTransportError(
            f"Refusing to send the API key in clear text to {host} over http: "
            "use an https:// base URL, or pass --allow-insecure-http if you accept the risk."
        )
    return base_url.rstrip("/")
