"""What a submitted URL becomes: its outcome, its page and its item, decided from the URL.

Private to :mod:`batch_export.testing.submit`. Everything here is a function of the seed and
the URL (and of whether the emulator has been sent the URL before), so that a test can say
in advance which URLs fail, with which code, and which succeed when resubmitted.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import urlsplit

from batch_export.codes import FAILURE_CODES
from batch_export.testing._items import ERROR_MESSAGES

JobDoc = dict[str, Any]

# The vendor's extraction error codes (batch_export.codes), split by whether a new attempt may
# succeed. The emulator makes a passing failure succeed on resubmission. Left out: the codes
# that a plain batch cannot earn (no wait_for, no cancellation, no balance run out mid-job).
_NOT_EARNED = frozenset(
    {"CANCELLED", "PAYMENT_REQUIRED", "INVALID_URL", "INVALID_WAIT_FOR_SELECTOR",
     "WAIT_FOR_SELECTOR_TIMEOUT"}
)  # fmt: skip
PASSING_CODES: tuple[str, ...] = tuple(
    code for code, entry in FAILURE_CODES.items() if entry.resubmit and code not in _NOT_EARNED
)
PERMANENT_CODES: tuple[str, ...] = tuple(
    code for code, entry in FAILURE_CODES.items() if not entry.resubmit and code not in _NOT_EARNED
)
_WORDS = (
    "archive", "battery", "cobalt", "delta", "ember", "forest", "garnet", "harbor", "island",
    "juniper", "kernel", "lantern", "meadow", "nickel", "orbit", "pepper", "quartz", "river",
    "saffron", "timber", "umber", "velvet", "willow", "xenon", "yarrow", "zephyr",
)  # fmt: skip
_MAX_URL_CHARS = 2048


def is_valid_url(url: str) -> bool:
    """The emulated API's own rule: http(s), a dotted host, no blanks, at most 2,048 chars.

    Stricter than a client may be (``http://localhost/`` is refused), so that tests meet
    URLs that only the server rejects.

    >>> is_valid_url("https://quotes.toscrape.com/"), is_valid_url("http://localhost/")
    (True, False)
    """
    if len(url) > _MAX_URL_CHARS or any(ch.isspace() or ord(ch) < 32 for ch in url):
        return False
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host) and "." in (host or "")


@dataclass(frozen=True)
class Outcome:
    """What extracting one URL gives: ``error_code`` None for a success."""

    error_code: str | None

    @property
    def passing(self) -> bool:
        """True for a failure that a new attempt may turn into a success."""
        return self.error_code in PASSING_CODES


def decide(url: str, *, seed: int, failure_rate: float, passing_share: float) -> Outcome:
    """The first attempt's outcome for ``url``: the same for the same seed and URL."""
    rng = random.Random(f"{seed}:outcome:{url}")
    if rng.random() >= failure_rate:
        return Outcome(None)
    codes = PASSING_CODES if rng.random() < passing_share else PERMANENT_CODES
    return Outcome(rng.choice(codes))


def page_text(url: str, *, markdown_bytes: int) -> tuple[str, str]:
    """The markdown and HTML extracted from ``url``: made from the URL, the same every time."""
    digest = hashlib.sha256(url.encode("utf-8", "surrogatepass")).digest()
    rng = random.Random(digest)
    title = " ".join(rng.choice(_WORDS).capitalize() for _ in range(3))
    sentences: list[str] = []
    size = 0
    while size < markdown_bytes:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 14))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        size += len(sentence) + 1
    body = " ".join(sentences)
    markdown = f"# {title}\n\nSource: {url}\n\n{body}"
    html = (
        f"<!DOCTYPE html><html><head><title>{escape(title)}</title></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(body)}</p></body></html>"
    )
    return markdown, html


def make_item(
    index: int, url: str, outcome: Outcome, *, formats: frozenset[str], markdown_bytes: int
) -> JobDoc:
    """One item of a finished job, in the SDK's shape (``metadata`` without ``retry_count``)."""
    rng = random.Random(f"item:{url}:{outcome.error_code}")
    item: JobDoc = {"input_index": index, "url": url}
    if outcome.error_code is None:
        markdown, html = page_text(url, markdown_bytes=markdown_bytes)
        item.update(status="completed", error_code=None, error_message=None)
        item["data"] = {
            "markdown": markdown if "markdown" in formats else None,
            "html": html if "html" in formats else None,
        }
        duration = int(rng.lognormvariate(6.6, 0.5))
        item["metadata"] = {"http_status": 200, "duration_ms": duration, "tokens_charged": 1}
        return item
    http_status, message = ERROR_MESSAGES.get(outcome.error_code, (None, "Extraction failed."))
    host = urlsplit(url).hostname or "the target"
    item.update(
        status="failed", error_code=outcome.error_code, error_message=message.format(host=host)
    )
    item["data"] = None
    duration = 30_000 if outcome.error_code == "TIMEOUT" else int(rng.lognormvariate(6.0, 0.6))
    item["metadata"] = {"http_status": http_status, "duration_ms": duration, "tokens_charged": 0}
    return item


def cancelled_item(index: int, url: str) -> JobDoc:
    """An item that a cancellation stopped before it ran."""
    return {
        "input_index": index,
        "url": url,
        "status": "cancelled",
        "error_code": None,
        "error_message": None,
        "data": None,
        "metadata": {"http_status": None, "duration_ms": None, "tokens_charged": 0},
    }
