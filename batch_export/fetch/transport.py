"""Below the client: where requests go, and what a transport failure means, in one place.

:class:`~batch_export.fetch.client.ApiClient` asks for pages over libcurl
(:mod:`batch_export.fetch.curl`, which bounds each request's time and size); this module
decides what the client tells libcurl, and turns libcurl's failures into the error tree:

- **Where the key goes.** A loopback target never goes through a proxy; everything else
  follows the environment as requests would (``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``,
  the CA bundle of ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE`` or certifi), read once per
  client with requests' own helpers; libcurl's own reading of the environment is off.
- **What went wrong.** Every libcurl error is one sentence (:func:`network_error`): a
  :class:`TransientApiError` (retried) for timeouts, drops, bodies cut short or undecodable,
  a :class:`ResponseShapeError` for an answer past the size bound.

Example:

    >>> route_for("http://127.0.0.1:9")
    Route(proxy='', ca_file=None, ca_dir=None)
    >>> is_loopback("127.0.0.1"), is_loopback("10.0.0.1")
    (True, False)
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pycurl

from batch_export.errors import ApiError, ResponseShapeError, TransientApiError
from batch_export.fetch.curl import ERROR_BODY_PREFIX, Failure, Route

__all__ = [
    "ERROR_BODY_PREFIX",
    "is_loopback",
    "network_error",
    "route_for",
    "too_large",
    "where",
    "without_credentials",
]

_LOOPBACK_NAMES = frozenset({"localhost", "::1", "[::1]"})

# What each libcurl error says about the API, as the end of "The API at HOST ...".
_CONNECT = "dropped or refused the connection"
_CUT = "cut the answer short"
_NOT_HTTP = "sent an answer that is not valid HTTP"
_TLS = "could not be verified over TLS (check REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE)"
_SAID: dict[int, str] = {
    pycurl.E_COULDNT_CONNECT: _CONNECT,
    pycurl.E_SEND_ERROR: _CONNECT,
    pycurl.E_GOT_NOTHING: "closed the connection without answering",
    pycurl.E_RECV_ERROR: _CUT,
    pycurl.E_PARTIAL_FILE: _CUT,
    pycurl.E_BAD_CONTENT_ENCODING: "sent a body that could not be decoded",
    pycurl.E_COULDNT_RESOLVE_HOST: "could not be found (its host name does not resolve)",
    pycurl.E_COULDNT_RESOLVE_PROXY: "could not be reached (the proxy's name does not resolve)",
    97: "could not be reached through the proxy",  # CURLE_PROXY
    8: _NOT_HTTP,  # CURLE_WEIRD_SERVER_REPLY
    pycurl.E_UNSUPPORTED_PROTOCOL: _NOT_HTTP,  # HTTP/0.9, or a scheme we do not speak
    pycurl.E_HTTP2: _NOT_HTTP,
    92: _NOT_HTTP,  # CURLE_HTTP2_STREAM
    100: "sent headers past libcurl's bound",  # CURLE_TOO_LARGE
    pycurl.E_WRITE_ERROR: "sent headers past their bound of 256 KiB",
    pycurl.E_SSL_CONNECT_ERROR: _TLS,
    pycurl.E_PEER_FAILED_VERIFICATION: _TLS,
    pycurl.E_SSL_CACERT_BADFILE: _TLS,
    pycurl.E_SSL_CERTPROBLEM: _TLS,
    pycurl.E_SSL_CIPHER: _TLS,
}


def is_loopback(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``: the key never leaves the machine."""
    if not host:
        return False
    host = host.lower()
    if host in _LOOPBACK_NAMES:
        return True
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() and len(p) <= 3 for p in parts)


def route_for(base_url: str) -> Route:
    """How requests to ``base_url`` travel: its proxy (or none) and its CA certificates.

    Every request goes to the same origin (redirects elsewhere are refused), so the proxy and
    the CA bundle are read once, for ``base_url``. A loopback ``base_url`` bypasses any proxy.
    """
    ca_file = ca_dir = None
    if base_url.startswith("https:"):
        import requests.utils  # for its helpers only, and only where they apply: it loads slowly

        bundle = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
        ca_file, ca_dir = (None, bundle) if Path(bundle).is_dir() else (bundle, None)
    proxy = ""
    if not is_loopback(urlsplit(base_url).hostname) and _proxies_set():
        import requests.utils

        environ = requests.utils.get_environ_proxies(base_url)  # NO_PROXY applied here
        proxy = requests.utils.select_proxy(base_url, environ) or ""
    return Route(proxy=proxy, ca_file=ca_file, ca_dir=ca_dir)


def _proxies_set() -> bool:
    """Whether the environment names any proxy (``HTTPS_PROXY``, ``all_proxy``, ...)."""
    return any(name.lower().endswith("_proxy") and value for name, value in os.environ.items())


def without_credentials(url: str) -> str:
    """``url`` reduced to scheme, host and port: no user, password, path or query."""
    place = _place(url)
    return _UNREADABLE if place is None else f"{place[0]}://{place[1]}"


def where(url: str) -> str:
    """The host and port of ``url``, for messages: never a user, password or query."""
    place = _place(url)
    return _UNREADABLE if place is None else place[1]


_UNREADABLE = "(an unreadable URL)"


def _place(url: str) -> tuple[str, str] | None:
    """The scheme of ``url`` and its ``host[:port]``, or None when it cannot be read."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    return parts.scheme, (parts.hostname or "") + (f":{port}" if port else "")


def network_error(
    failure: Failure, url: str, *, timeout: float, limit: int, reading: bool
) -> ApiError:
    """The error for a transfer that gave no usable answer: the one map of libcurl's errors.

    ``timeout`` is the request's deadline in seconds, ``limit`` the bound on its body, and
    ``reading`` says the answer had begun (a status line came).
    """
    if failure.reason == "announced":
        return too_large(url, limit, f"it announces {failure.announced} bytes")
    if failure.reason == "too_large":
        return too_large(url, limit, "it went on past that")
    if failure.code == pycurl.E_OPERATION_TIMEDOUT:
        what = f"did not answer within the request deadline of {timeout:g} s"
    elif failure.reason == "cancelled":
        what = "was not waited for (the request was cancelled)"
    else:
        what = _SAID.get(failure.code, "failed at the HTTP level")
        if what == _CONNECT and reading:
            what = _CUT
    return TransientApiError(
        f"The API at {where(url)} {what} (libcurl error {failure.code}).",
        code="network",
        url=url,
    )


def too_large(url: str, limit: int, what: str) -> ResponseShapeError:
    """The error for an answer past ``limit`` bytes: a retry would get the same."""
    return ResponseShapeError(
        f"The answer from {where(url)} is larger than the bound of "
        f"{limit / 2**20:g} MB ({what}): if a page of the job is really that large, raise "
        "--max-response-mb (max_response_bytes in Python).",
        url=url,
    )
