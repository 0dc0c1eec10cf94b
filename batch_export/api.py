"""Facts the API sets, and the defaults chosen for reaching it: declared once, for every layer.

Where the API lives, how the key travels, page sizes; and the default of each connection
option that a lower layer also needs (:class:`~batch_export.connection.Connection` declares
the options, :class:`~batch_export.fetch.client.ApiClient` and the waiting take the same
defaults from here).

>>> DEFAULT_BASE_URL, MAX_PAGE_SIZE
('https://scraper.geonode.io', 50)
"""

from __future__ import annotations

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_REQUEST_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "MAX_BATCH_URLS",
    "MAX_LIST_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "OUTPUT_FORMATS",
    "PROXY_TYPES",
]

DEFAULT_BASE_URL = "https://scraper.geonode.io"
# The environment variables the provider's own examples use.
BASE_URL_ENV = "SCRAPER_API_BASE_URL"
API_KEY_ENV = "GEONODE_SCRAPER_API_KEY"
# `page_size` must be between 1 and 50: the most items one status answer carries.
MAX_PAGE_SIZE = 50
# `page_size` of the job listing (GET /v1/batch/jobs): 1 to 100, as the provider's SDK states.
MAX_LIST_PAGE_SIZE = 100
# POST /v1/batch takes 1 to 1,000 URLs (fewer on some plans), what to extract from each page,
# and a proxy of one of these types (the SDK's BatchRequest, OutputFormat, ProxyType).
MAX_BATCH_URLS = 1000
OUTPUT_FORMATS: tuple[str, ...] = ("markdown", "html")
PROXY_TYPES: tuple[str, ...] = ("datacenter", "residential", "mix")
# The largest answer accepted by default, on the wire and decompressed: a page of 50 items
# of 20 KB of html is about 2 MB, so this leaves room without letting a server fill memory.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 2**20
# Requests in flight at once: eight keeps a 30 ms link busy without crowding the API.
DEFAULT_CONCURRENCY = 8
# Retries of a request that failed for a passing reason (the first try not counted).
DEFAULT_MAX_RETRIES = 7
# Seconds one request may take in all (connect, headers, body).
DEFAULT_REQUEST_TIMEOUT = 60.0
# Seconds to wait for a job to finish.
DEFAULT_WAIT_TIMEOUT = 3600.0
