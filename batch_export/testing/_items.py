"""The items of generated jobs: outcomes, pages, error messages and metadata.

Private to :mod:`batch_export.testing.jobs`, which documents what the items look like.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from batch_export.testing.content import PagePool

JobDoc = dict[str, Any]

TERMINAL_STATUSES: tuple[str, ...] = ("completed", "failed", "cancelled")

# A target HTTP status (None: no answer came) and a message for each of the provider's item
# failure codes (the SDK's ExtractionErrorCode). A code not listed gets a generic message.
ERROR_MESSAGES: dict[str, tuple[int | None, str]] = {
    "RATE_LIMITED": (429, "{host} answered HTTP 429 Too Many Requests."),
    "WORK_CONCURRENCY_LIMITED": (None, "The account's work concurrency limit was reached."),
    "WORK_CONCURRENCY_LEASE_EXPIRED": (None, "The work slot's lease expired before the page."),
    "TEMPORARY_BLOCK": (403, "{host} blocked the request for now (HTTP 403)."),
    "NETWORK_ERROR": (None, "Could not resolve host {host}."),
    "CAPTCHA_CHALLENGE": (403, "{host} answered with a CAPTCHA challenge."),
    "PERMANENT_BLOCK": (403, "{host} refuses this client (HTTP 403 Forbidden)."),
    "INVALID_URL": (None, "The URL cannot be fetched."),
    "INVALID_WAIT_FOR_SELECTOR": (None, "wait_for is not a valid CSS selector."),
    "WAIT_FOR_SELECTOR_TIMEOUT": (200, "The wait_for selector did not appear in time."),
    "UNPROCESSABLE_CONTENT": (200, "The page's content could not be converted."),
    "AUTH_REQUIRED": (401, "{host} requires authentication (HTTP 401)."),
    "TIMEOUT": (None, "The target did not answer within 30 seconds."),
    "CANCELLED": (None, "The item was cancelled before it was scraped."),
    "PAYMENT_REQUIRED": (None, "The account's balance ran out before this item."),
    "INTERNAL_ERROR": (None, "The scraper failed on this item; it was not charged."),
    "PROXY_ERROR": (502, "The proxy could not reach {host}."),
}
_INVALID_URLS = (
    "htp://quotes.toscrape.com/page/2/",
    "not a url",
    "https://",
    "ftp://files.example.com/report.pdf",
    "javascript:void(0)",
    "https://exa mple.com/space",
)
_LINKS_NULL_SHARE = 0.25
# The two shapes an item may come in: the documentation's example (data.links and
# metadata.retry_count) and the provider's SDK's models (neither).
ITEM_SHAPES: tuple[str, ...] = ("documented", "sdk")
_NOT_IN_SDK = {"data": "links", "metadata": "retry_count"}


def plan_failures(
    rng: random.Random, items: int, failure_rate: float, error_codes: Sequence[str]
) -> dict[int, str]:
    count = round(items * failure_rate)
    positions = sorted(rng.sample(range(items), count))
    codes = list(error_codes)
    rng.shuffle(codes)
    return {index: codes[n % len(codes)] for n, index in enumerate(positions)}


def plan_cancelled(
    rng: random.Random, items: int, cancelled: int, failed: dict[int, str], *, tail: bool
) -> set[int]:
    free = [index for index in range(items) if index not in failed]
    if cancelled > len(free):
        raise ValueError(f"cancelled={cancelled} is more than the {len(free)} items not failed")
    return set(free[len(free) - cancelled :] if tail else rng.sample(free, cancelled))


def _metadata(
    http_status: int | None, duration_ms: int | None, retries: int | None, tokens: int
) -> JobDoc:
    return {
        "http_status": http_status,
        "duration_ms": duration_ms,
        "retry_count": retries,
        "tokens_charged": tokens,
    }


def _item(index: int, url: str, status: str, code: str | None, message: str | None) -> JobDoc:
    return {
        "input_index": index,
        "url": url,
        "status": status,
        "error_code": code,
        "error_message": message,
    }


@dataclass(frozen=True)
class ItemMaker:
    pool: PagePool
    formats: frozenset[str]
    links_per_item: int

    def completed(self, rng: random.Random, index: int) -> JobDoc:
        page = self.pool.page(rng, index, links=self.links_per_item, html="html" in self.formats)
        links: list[str] | None = None
        if self.links_per_item and rng.random() >= _LINKS_NULL_SHARE:
            links = list(page.links[: rng.randint(0, self.links_per_item)])
        item = _item(index, page.url, "completed", None, None)
        item["data"] = {
            "markdown": page.markdown if "markdown" in self.formats else None,
            "html": page.html if "html" in self.formats else None,
            "links": links,
        }
        retries = 1 if rng.random() < 0.08 else 0
        item["metadata"] = _metadata(200, int(rng.lognormvariate(6.6, 0.5)), retries, 1)
        return item

    def failed(self, rng: random.Random, index: int, code: str) -> JobDoc:
        url = self.pool.page(rng, index, html=False).url
        http_status, message = ERROR_MESSAGES.get(code, (None, f"Scraping failed ({code})."))
        host = url.split("/", 3)[2]
        item = _item(index, url, "failed", code, message.format(host=host))
        item["data"] = None if rng.random() < 0.5 else dict.fromkeys(("markdown", "html", "links"))
        duration = 30_000 if code == "TIMEOUT" else int(rng.lognormvariate(6.0, 0.6))
        item["metadata"] = _metadata(http_status, duration, rng.randint(0, 3), 0)
        return item

    def cancelled(self, rng: random.Random, index: int) -> JobDoc:
        item = _item(index, self.pool.page(rng, index, html=False).url, "cancelled", None, None)
        item["data"] = None
        item["metadata"] = _metadata(None, None, None, 0)
        return item


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def make_results(
    rng: random.Random, maker: ItemMaker, failed: dict[int, str], cancelled: set[int], n: int
) -> list[JobDoc]:
    results: list[JobDoc] = []
    for index in range(n):
        if index in failed:
            results.append(maker.failed(rng, index, failed[index]))
        elif index in cancelled:
            results.append(maker.cancelled(rng, index))
        else:
            results.append(maker.completed(rng, index))
    return results


def batch_config(rng: random.Random, formats: Sequence[str]) -> JobDoc:
    return {
        "render_js": rng.random() < 0.3,
        "formats": list(formats),
        "proxy": {"country": rng.choice(("US", "DE", "GB")), "type": "residential"},
        "headers": None,
    }


def invalid_url(number: int) -> str:
    base = _INVALID_URLS[number % len(_INVALID_URLS)]
    return base if number < len(_INVALID_URLS) else f"{base}#{number}"


def in_shape(results: list[JobDoc], shape: str) -> list[JobDoc]:
    """The items in ``shape``: as made (``documented``), or without the keys the SDK lacks."""
    if shape not in ITEM_SHAPES:
        raise ValueError(f"item_shape must be one of {', '.join(ITEM_SHAPES)}, got {shape!r}")
    if shape == "documented":
        return results
    for item in results:
        for part, key in _NOT_IN_SDK.items():
            if isinstance(item.get(part), dict):
                del item[part][key]
    return results


def check_arguments(
    *, formats: Sequence[str], failure_rate: float, status: str, counts: tuple[int, ...]
) -> None:
    """Refuse arguments of generate_job that cannot make a consistent job."""
    names = ("items", "cancelled", "invalid_urls", "processing_polls")
    for name, count in zip(names, counts, strict=True):
        if count < 0:
            raise ValueError(f"{name} must be 0 or more, got {count}")
    if not formats or not set(formats) <= {"markdown", "html"}:
        raise ValueError(f"formats must be some of 'markdown', 'html', got {list(formats)}")
    if not 0.0 <= failure_rate <= 1.0:
        raise ValueError(f"failure_rate must be between 0 and 1, got {failure_rate}")
    if status not in TERMINAL_STATUSES:
        raise ValueError(f"status must be one of {', '.join(TERMINAL_STATUSES)}, got {status!r}")


def timestamps(created_at: str, results: list[JobDoc]) -> tuple[str, str]:
    """``created_at`` normalized, and a ``completed_at`` after the items' work (10 at once)."""
    created = parse_iso(created_at)
    work_ms = sum(item["metadata"]["duration_ms"] or 0 for item in results)
    return iso(created), iso(created + timedelta(seconds=12 + work_ms // 8000))
