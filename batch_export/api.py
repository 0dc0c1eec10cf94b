"""Facts the API sets, and the defaults chosen for reaching it: declared once, for every layer.

Where the API lives, how the key travels, page sizes; and the default of each connection
option that a lower layer also needs (:class:`~batch_export.connection.Connection` declares
the options, :class:`~batch_export.fetch.client.ApiClient` and the waiting take the same
defaults from here).

>>> DEFAULT_BASE_URL, MAX_PAGE_SIZE
('https://scraper.geonode.io', 50)
"""

from __future__ import annotations

import re

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
    "canonical_job_id",
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

# A UUID as people copy it (any case; braces and a urn:uuid: prefix are taken off first).
_UUID = re.compile(r"[0-9a-f]{8}(-?)[0-9a-f]{4}\1[0-9a-f]{4}\1[0-9a-f]{4}\1[0-9a-f]{12}", re.I)
_URN = "urn:uuid:"


def canonical_job_id(job_id: str) -> str:
    """``job_id`` as the API writes it: a UUID lower case and hyphenated, any other id as is.

    Job ids are UUIDs (the API answers ``9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019``); the same
    id in upper case, without hyphens, in braces or as a ``urn:uuid:`` is that job too.

    >>> canonical_job_id("{9D7B2C8E8A4B4C109AF365F4F8F6C019}")
    '9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019'
    >>> canonical_job_id("urn:uuid:9D7B2C8E-8A4B-4C10-9AF3-65F4F8F6C019")
    '9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019'
    >>> canonical_job_id("My-Job")
    'My-Job'
    """
    body = job_id
    if body[: len(_URN)].lower() == _URN:
        body = body[len(_URN) :]
    elif body[:1] == "{" and body[-1:] == "}":
        body = body[1:-1]
    if not _UUID.fullmatch(body):
        return job_id
    digits = body.replace("-", "").lower()
    return "-".join((digits[:8], digits[8:12], digits[12:16], digits[16:20], digits[20:]))
