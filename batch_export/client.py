"""The HTTP boundary: one keep-alive pool, the retry policy, and the key kept secret.

Every request to the API goes through :class:`ApiClient`. It translates urllib3's and the
server's failures into the error tree (:mod:`batch_export.errors`) here and nowhere else,
retries what may pass (:mod:`batch_export.retry`), lowers concurrency on 429
(:mod:`batch_export.throttle`), and guards the API key: never printed, never sent over plain
http to a host other than loopback, never sent along a redirect to another host.

It speaks HTTP through urllib3, the library under requests: a page costs half the CPU time
there (0.25 ms against 0.47 ms here), and pages are fetched by threads that share the GIL
with the export. What requests would read from the environment (``HTTPS_PROXY``,
``NO_PROXY``, ``REQUESTS_CA_BUNDLE``, ``~/.netrc``) is read once, with requests' own helpers.

Example:

    >>> from batch_export.client import ApiClient
    >>> client = ApiClient(base_url="http://127.0.0.1:9", api_key="k")
    >>> client
    ApiClient(base_url='http://127.0.0.1:9', api_key=<hidden>)
"""

from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

import requests.utils
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

from batch_export.errors import (
    ApiError,
    AuthenticationError,
    InsecureTransportError,
    InvalidInputError,
    JobNotFoundError,
    RequestRejectedError,
    TransientApiError,
)
from batch_export.job import ResultPage, decode_json
from batch_export.retry import RETRY_STATUS, RetryPolicy, call_with_retries, parse_retry_after
from batch_export.throttle import AdaptiveLimit

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "ApiClient",
    "RequestStats",
    "check_job_id",
    "decode_json",
    "redact",
]

T = TypeVar("T")

DEFAULT_BASE_URL = "https://scraper.geonode.io"
BASE_URL_ENV = "SCRAPER_API_BASE_URL"
API_KEY_ENV = "GEONODE_SCRAPER_API_KEY"
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_LOOPBACK = re.compile(r"^(localhost|127(\.\d{1,3}){3}|::1|\[::1\])$")
_MAX_REDIRECTS = 5
_EXCERPT = 200
_REDIRECTS = (301, 302, 303, 307, 308)
_HEADERS = {
    "Accept": "application/json",
    "User-Agent": "batch-export",
    "Accept-Encoding": urllib3.util.make_headers(accept_encoding=True)["accept-encoding"],
}


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is a plain identifier, else raise :class:`InvalidInputError`.

    A job id goes into the request path, so ``../x``, ``a/b``, ``?`` or spaces are refused
    before any request is made.
    """
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise InvalidInputError(
            f"Job id {job_id!r} is not a plain identifier: use the `job_id` that POST /v1/batch "
            "returned (letters, digits, '-' and '_', e.g. 9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019)."
        )
    return job_id


def redact(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` hidden."""
    if not secret:
        return text
    return text.replace(secret, "<hidden>")


class RequestStats:
    """Thread-safe counts of what the client did: requests, and retries by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries: Counter[str] = Counter()

    def count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def count_retry(self, reason: str) -> None:
        with self._lock:
            self.retries[reason] += 1

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "retries": sum(self.retries.values()),
                "retries_by_reason": dict(sorted(self.retries.items())),
            }


class ApiClient:
    """A client of the status endpoints, safe to share between threads.

    Options are keyword-only; ``base_url`` and ``api_key`` default to the environment
    (``SCRAPER_API_BASE_URL``, ``GEONODE_SCRAPER_API_KEY``). ``sleep`` is injected so that
    retry tests take no time.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 60.0,
        concurrency: int = 8,
        allow_insecure_http: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[TransientApiError, float], None] | None = None,
    ) -> None:
        self.base_url = _check_base_url(
            base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
            allow_insecure_http=allow_insecure_http,
        )
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.limit = AdaptiveLimit(concurrency)
        self.stats = RequestStats()
        self._sleep = sleep
        self._on_retry = on_retry
        self._rng = random.Random()
        self._http, self._headers = _pool_for(self.base_url, pool_size=concurrency)

    def __repr__(self) -> str:
        return f"ApiClient(base_url={self.base_url!r}, api_key=<hidden>)"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.clear()

    def redact(self, text: str) -> str:
        """``text`` with this client's API key hidden."""
        return redact(text, self._api_key)

    def fetch_page(self, job_id: str, *, page: int, page_size: int) -> ResultPage:
        """``GET /v1/batch/{job_id}?page=&page_size=``, retried, as a :class:`ResultPage`."""
        check_job_id(job_id)
        body = self.get_json(
            f"/v1/batch/{job_id}", {"page": page, "page_size": page_size}, job_id=job_id, page=page
        )
        return ResultPage.from_response(body, job_id=job_id, page=page, page_size=page_size)

    def list_jobs(self, *, page: int, page_size: int = 50) -> dict[str, Any]:
        """``GET /v1/batch/jobs?page=&page_size=``: one page of the account's jobs."""
        body = self.get_json("/v1/batch/jobs", {"page": page, "page_size": page_size}, page=page)
        if not isinstance(body, dict) or not isinstance(body.get("jobs"), list):
            raise ApiError(
                f"Expected a `jobs` list from GET /v1/batch/jobs page {page}, got {_shape(body)}.",
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
        for again like a dropped connection.
        """
        if not self._api_key:
            raise InvalidInputError(
                f"No API key: pass --api-key or set {API_KEY_ENV} in the environment."
            )
        url = urljoin(self.base_url + "/", path.lstrip("/"))

        def attempt(number: int) -> T:
            try:
                return self._attempt(url, params, decode)
            except ApiError as error:
                error.job_id, error.page, error.attempt = job_id, page, number
                raise

        return call_with_retries(
            attempt, policy=self.retry, sleep=self._sleep, rng=self._rng, on_retry=self._retrying
        )

    def _retrying(self, error: TransientApiError, delay: float) -> None:
        reason = str(error.http_status) if error.http_status else (error.code or "network")
        self.stats.count_retry(reason)
        if self._on_retry is not None:
            self._on_retry(error, delay)

    def _attempt(self, url: str, params: dict[str, Any], decode: Callable[[bytes, str], T]) -> T:
        with self.limit.slot():
            self.stats.count_request()
            response, url = self._send(url, params)
            content = _read_body(response, url)
        if response.status == 429:
            self.limit.throttled()
        if response.status != 200:
            raise _refusal(response, content, url)
        self.limit.succeeded()
        return decode(content, url)

    def _send(self, url: str, params: dict[str, Any]) -> tuple[urllib3.BaseHTTPResponse, str]:
        """Send the GET and read the headers; the body is read by the caller, in the slot.

        Returns the answer and the full URL that gave it (after any same-origin redirect).
        """
        headers = {**self._headers, "X-Api-Key": self._api_key or ""}
        for _ in range(_MAX_REDIRECTS + 1):
            try:
                response = self._http.request(
                    "GET",
                    url,
                    fields=params,
                    headers=headers,
                    timeout=self.timeout,
                    retries=False,
                    redirect=False,
                    preload_content=False,
                )
            except (Urllib3Error, OSError) as error:
                raise _network_error(error, url) from None
            if response.status not in _REDIRECTS or "Location" not in response.headers:
                return response, f"{url}?{urlencode(params)}" if params else url
            response.drain_conn()
            response.release_conn()
            url, params = _same_origin_redirect(url, response), {}
        raise RequestRejectedError(f"The API redirected more than {_MAX_REDIRECTS} times.", url=url)


def _pool_for(base_url: str, *, pool_size: int) -> tuple[urllib3.PoolManager, dict[str, str]]:
    """One keep-alive pool for ``base_url``, and the headers every request carries.

    Every request goes to the same origin (redirects elsewhere are refused), so what
    requests would read from the environment for each request is read once, for
    ``base_url``, with requests' own functions: the proxy, the CA bundle, ``~/.netrc``.
    """
    headers = dict(_HEADERS)
    netrc = requests.utils.get_netrc_auth(base_url)
    if netrc:
        headers.update(urllib3.util.make_headers(basic_auth=":".join(netrc)))
    tls: dict[str, Any] = {}
    if base_url.startswith("https:"):
        bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
        tls = {"ca_cert_dir" if Path(bundle).is_dir() else "ca_certs": bundle}
    proxies = requests.utils.get_environ_proxies(base_url)
    proxy = requests.utils.select_proxy(base_url, proxies)
    options: dict[str, Any] = {"num_pools": 1, "maxsize": pool_size, **tls}
    if not proxy:
        return urllib3.PoolManager(**options), headers
    if proxy.lower().startswith("socks"):
        try:
            with warnings.catch_warnings():  # urllib3 warns before it fails without PySocks
                warnings.simplefilter("ignore", DependencyWarning)
                from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise InvalidInputError(
                f"The proxy {_without_credentials(proxy)} is a SOCKS proxy: install PySocks "
                "(pip install 'urllib3[socks]') to use it."
            ) from None
        return SOCKSProxyManager(proxy, **options), headers
    user, password = requests.utils.get_auth_from_url(proxy)
    proxy_headers = None
    if user:
        proxy_headers = urllib3.util.make_headers(proxy_basic_auth=f"{user}:{password}")
    return urllib3.ProxyManager(proxy, proxy_headers=proxy_headers, **options), headers


def _without_credentials(url: str) -> str:
    """``url`` without the user and password it may carry."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _read_body(response: urllib3.BaseHTTPResponse, url: str) -> bytes:
    """The whole body; a connection that fails midway is transient. Frees the connection."""
    try:
        return response.read()
    except (Urllib3Error, OSError) as error:
        raise _network_error(error, url, reading=True) from None
    finally:
        response.release_conn()


def _check_base_url(base_url: str, *, allow_insecure_http: bool) -> str:
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInputError(
            f"Base URL {base_url!r} is not an http(s) URL: pass --base-url like "
            f"{DEFAULT_BASE_URL} (or set {BASE_URL_ENV})."
        )
    if parts.scheme == "http" and not _LOOPBACK.match(parts.hostname) and not allow_insecure_http:
        raise InsecureTransportError(
            f"Refusing to send the API key in clear text to {parts.hostname} over http: "
            "use an https:// base URL, or pass --allow-insecure-http if you accept the risk."
        )
    return base_url.rstrip("/")


def _same_origin_redirect(url: str, response: urllib3.BaseHTTPResponse) -> str:
    target = urljoin(url, response.headers.get("Location", ""))
    before, after = urlsplit(url), urlsplit(target)
    if (before.scheme, before.netloc) != (after.scheme, after.netloc):
        raise RequestRejectedError(
            f"The API redirected to another host ({after.scheme}://{after.netloc}); batch-export "
            "does not send your API key there. If the API has moved, pass the new --base-url.",
            url=url,
            http_status=response.status,
        )
    return target


def _network_error(error: BaseException, url: str, *, reading: bool = False) -> TransientApiError:
    if isinstance(error, ReadTimeoutError):
        what = "did not answer in time"
    elif isinstance(error, NewConnectionError):
        what = "dropped or refused the connection"
    elif isinstance(error, ConnectTimeoutError):
        what = "could not connect in time"
    elif isinstance(error, DecodeError):
        what = "sent a body that could not be decoded"
    elif isinstance(error, ProtocolError | OSError):
        what = "cut the answer short" if reading else "dropped or refused the connection"
    else:
        what = "failed at the HTTP level"
    return TransientApiError(
        f"The API at {urlsplit(url).netloc} {what} ({type(error).__name__}).",
        code="network",
        url=url,
    )


def _refusal(response: urllib3.BaseHTTPResponse, content: bytes, url: str) -> ApiError:
    status = response.status
    code, message, correlation_id = _error_fields(content)
    said = f"HTTP {status}: {message}" + (
        f"; correlation id {correlation_id}" if correlation_id else ""
    )
    context: dict[str, Any] = {
        "code": code,
        "correlation_id": correlation_id,
        "http_status": status,
        "url": url,
    }
    if status in RETRY_STATUS:
        hint = parse_retry_after(response.headers.get("Retry-After"))
        return TransientApiError(f"The API answered {said}.", retry_after=hint, **context)
    if status in (401, 403):
        return AuthenticationError(
            f"The API rejected the API key ({said}): check --api-key or {API_KEY_ENV}.", **context
        )
    if status == 404:
        return JobNotFoundError(
            f"The API has no such job ({said}): check the job id and the base URL; "
            "the provider may no longer keep old jobs.",
            **context,
        )
    return RequestRejectedError(f"The API refused the request ({said}).", **context)


def _error_fields(content: bytes) -> tuple[str | None, str, str | None]:
    """The API's own ``code``, ``message`` and ``correlation_id``, or an excerpt of the body."""
    try:
        body = json.loads(content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        if isinstance(body.get("detail"), list):
            problems = [
                f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                for d in body["detail"]
                if isinstance(d, dict)
            ]
            return "validation_error", "; ".join(problems) or "validation error", None
        if "message" in body or "code" in body:
            message = str(body.get("message") or body.get("code"))
            cid = body.get("correlation_id")
            return _opt(body.get("code")), _excerpt(message), _opt(cid)
    return None, _excerpt(_body_text(content)) or "(empty body)", None


def _body_text(content: bytes) -> str:
    text = content.decode("utf-8", errors="replace")
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", text, flags=re.S | re.I)
    return re.sub(r"<[^>]+>", " ", text)


def _excerpt(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _EXCERPT else flat[: _EXCERPT - 3] + "..."


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _shape(value: object) -> str:
    if isinstance(value, dict):
        return "an object with keys " + ", ".join(sorted(map(str, value))[:8])
    return type(value).__name__
