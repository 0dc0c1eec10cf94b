"""Scraped-page text that reads like the web, built from templates with a seeded RNG.

Five kinds of page, each from its own site: a quotes listing (quotes.toscrape.com), a book
detail page (books.toscrape.com), a news article, a shop's product page and an API docs page.
A page has the title, the markdown and the HTML a scraper would return, and its links.
:class:`PagePool` builds a few bodies once and dresses each item in its own URL and heading,
so that 100,000 distinct pages cost seconds, not minutes.

Example:

    >>> import random
    >>> page = generate_page(seed=1, kind="books", markdown_bytes=800)
    >>> page.url.startswith("https://books.toscrape.com/catalogue/")
    True
    >>> 600 < len(page.markdown) < 1000
    True
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from html import escape

from batch_export.testing._sites import SITES, Block, para

__all__ = ["KINDS", "Page", "PagePool", "generate_page"]

KINDS: tuple[str, ...] = tuple(SITES)


@dataclass(frozen=True)
class Page:
    """One scraped page: where it came from and what the scraper extracted."""

    url: str
    title: str
    markdown: str
    html: str
    links: tuple[str, ...]


@dataclass(frozen=True)
class _Body:
    kind: str
    markdown: str
    html: str
    links: tuple[str, ...]


def _fit(md: str, room: int, *, first: bool) -> tuple[str, bool]:
    """The block, or a paragraph trimmed at a word to ``room``; and whether the page is full."""
    if len(md) <= room + 40 or first:
        return md, False
    if "\n" not in md and room >= 40:
        cut = md[:room]
        sentence_end = cut.rfind(". ")
        if sentence_end > room // 2:
            return cut[: sentence_end + 1], True
        return cut.rsplit(" ", 1)[0].rstrip(',;:"') + "...", True
    return (md, True) if len(md) - room < room else ("", True)


def _fill(blocks: Iterator[Block], *, target: int, html_target: int) -> tuple[str, str]:
    """Take blocks until the markdown (and, when asked, the HTML) reach their sizes.

    With ``html_target`` 0 the HTML renders exactly the blocks the markdown took.
    """
    md_parts: list[str] = []
    html_parts: list[str] = []
    md_size = html_size = 0
    md_done = target <= 0
    while not md_done or html_size < html_target:
        md, html = next(blocks)
        if not md_done:
            md, md_done = _fit(md, target - md_size, first=not md_parts)
            if md:
                md_parts.append(md)
                md_size += len(md) + 2
                if html_target == 0:
                    html_parts.append(html if not md_done else para(md)[1])
            md_done = md_done or md_size >= target
        if html_size < html_target:
            html_parts.append(html)
            html_size += len(html)
    while len(md_parts) > 1 and md_parts[-1].startswith("#"):
        md_parts.pop()  # a page does not end on a heading
        if html_target == 0:
            html_parts.pop()
    return "\n\n".join(md_parts), "\n".join(html_parts)


def _body(rng: random.Random, kind: str, *, markdown_bytes: int, html_bytes: int) -> _Body:
    site = SITES[kind]
    markdown, html = _fill(site.blocks(rng), target=markdown_bytes, html_target=html_bytes)
    links = tuple(site.link(rng) for _ in range(12))
    return _Body(kind, markdown, html, links)


def _dress(body: _Body, rng: random.Random, index: int, links: int, *, html: bool) -> Page:
    url, title, (head_md, head_html) = SITES[body.kind].address(rng, index)
    markdown = f"# {title}\n\n{head_md}\n\n{body.markdown}"
    if not html:
        return Page(url, title, markdown, "", body.links[: max(links, 0)])
    document = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}'
        f'</title><link rel="canonical" href="{escape(url)}"></head><body><main><h1>'
        f"{escape(title)}</h1>\n{head_html}\n{body.html}\n</main></body></html>"
    )
    return Page(url, title, markdown, document, body.links[: max(links, 0)])


class PagePool:
    """A seeded pool of page bodies, dressed per item with its own URL, title and heading.

    Example:

        >>> import random
        >>> pool = PagePool(seed=3, size=4, markdown_bytes=500)
        >>> a, b = pool.page(random.Random(1), 0), pool.page(random.Random(2), 1)
        >>> a.markdown != b.markdown
        True
    """

    def __init__(
        self, *, seed: int = 0, size: int = 64, markdown_bytes: int = 2000, html_bytes: int = 0
    ) -> None:
        rng = random.Random(f"pool:{seed}")
        self._bodies = [
            _body(
                rng,
                KINDS[number % len(KINDS)],
                markdown_bytes=max(int(markdown_bytes * rng.uniform(0.8, 1.2)) - 80, 0),
                html_bytes=max(int(html_bytes * rng.uniform(0.8, 1.2)) - 300, 0),
            )
            for number in range(max(size, 1))
        ]

    def page(self, rng: random.Random, index: int, *, links: int = 0, html: bool = True) -> Page:
        """The page of item ``index``: a pooled body under an address of its own.

        ``html=False`` leaves :attr:`Page.html` empty, for speed when it is not served.
        """
        return _dress(rng.choice(self._bodies), rng, index, links, html=html)


def generate_page(
    *,
    seed: int = 0,
    kind: str | None = None,
    index: int = 0,
    markdown_bytes: int = 2000,
    html_bytes: int = 0,
    links: int = 0,
) -> Page:
    """One page of ``kind`` (one of :data:`KINDS`; chosen from the seed when None).

    ``markdown_bytes`` and ``html_bytes`` are approximate sizes; ``html_bytes=0`` renders the
    HTML from the same blocks as the markdown. ``links`` is how many links to extract (<= 12).
    """
    rng = random.Random(f"page:{seed}:{index}")
    kind = kind if kind is not None else rng.choice(KINDS)
    if kind not in SITES:
        raise ValueError(f"Unknown page kind {kind!r}: expected one of {', '.join(KINDS)}")
    body = _body(
        rng, kind, markdown_bytes=max(markdown_bytes - 80, 0), html_bytes=max(html_bytes - 300, 0)
    )
    return _dress(body, rng, index, links, html=True)
