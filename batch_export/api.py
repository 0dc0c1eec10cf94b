"""Facts the API sets, shared by every layer: where it lives, how the key travels, page sizes.

>>> DEFAULT_BASE_URL, MAX_PAGE_SIZE
('https://scraper.geonode.io', 50)
"""

from __future__ import annotations

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAX_PAGE_SIZE",
]

DEFAULT_BASE_URL = "https://scraper.geonode.io"
# The environment variables the provider's own examples use.
BASE_URL_ENV = "SCRAPER_API_BASE_URL"
API_KEY_ENV = "GEONODE_SCRAPER_API_KEY"
# `page_size` must be between 1 and 50: the most items one status answer carries.
MAX_PAGE_SIZE = 50
# The largest answer accepted by default, on the wire and decompressed: a page of 50 items
# of 20 KB of html is about 2 MB, so this leaves room without letting a server fill memory.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 2**20
