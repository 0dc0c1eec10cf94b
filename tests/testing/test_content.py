"""Scraped-page text: looks like its site, has the asked size, the same for the same seed."""

from __future__ import annotations

import random
from urllib.parse import urlsplit

import pytest

from batch_export.testing.content import KINDS, PagePool, generate_page

SITE_MARKS = {
    "quotes": ("quotes.toscrape.com", ["> “", "by ", "Tags: ["]),
    "books": ("books.toscrape.com", ["£", "## Product Information", "| UPC |", "In stock"]),
    "news": ("news.example.com", ["By ", "min read", '," said ']),
    "product": ("shop.example.com", ["## Key features", "## Specifications", "★"]),
    "docs": ("docs.example.com", ["| Parameter | Type | Default |", "```bash", "X-Api-Key"]),
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_looks_like_its_site(kind: str) -> None:
    host, marks = SITE_MARKS[kind]
    page = generate_page(seed=5, kind=kind, markdown_bytes=3000, links=6)
    assert urlsplit(page.url).hostname == host
    assert page.markdown.startswith(f"# {page.title}\n\n")
    for mark in marks:
        assert mark in page.markdown, mark
    assert page.html.startswith('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">')
    assert page.html.endswith("</main></body></html>")
    assert f'<link rel="canonical" href="{page.url}">' in page.html.replace("&amp;", "&")
    assert len(page.links) == 6
    assert {urlsplit(link).hostname for link in page.links} == {host}
    assert "lorem" not in (page.markdown + page.html).lower()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size", [600, 2000, 8000])
def test_markdown_has_about_the_asked_size(kind: str, size: int) -> None:
    sizes = [len(generate_page(seed=s, kind=kind, markdown_bytes=size).markdown) for s in range(5)]
    assert all(0.75 * size <= one <= 1.25 * size for one in sizes), sizes


@pytest.mark.parametrize("html_bytes", [3000, 10000])
def test_html_has_its_own_size_when_asked(html_bytes: int) -> None:
    page = generate_page(seed=1, kind="news", markdown_bytes=500, html_bytes=html_bytes)
    assert 0.8 * html_bytes <= len(page.html) <= 1.2 * html_bytes
    assert len(page.markdown) < 800


def test_html_renders_the_markdown_blocks_by_default() -> None:
    page = generate_page(seed=2, kind="product", markdown_bytes=1500)
    assert page.markdown.count("\n- ") == page.html.count("<li>")
    assert page.markdown.count("## ") == page.html.count("<h2>")


def test_same_seed_same_page() -> None:
    assert generate_page(seed=8) == generate_page(seed=8)
    assert generate_page(seed=8).markdown != generate_page(seed=9).markdown
    assert generate_page(seed=8, index=1).url != generate_page(seed=8, index=2).url


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="Unknown page kind 'blog': expected one of quotes, "):
        generate_page(kind="blog")


def test_pool_pages_are_distinct_and_skip_html_when_asked() -> None:
    pool = PagePool(seed=1, size=8, markdown_bytes=400)
    rng = random.Random(0)
    pages = [pool.page(rng, index, html=False) for index in range(300)]
    assert len({page.markdown for page in pages}) == 300
    assert {page.html for page in pages} == {""}
    assert len({urlsplit(page.url).hostname for page in pages}) == len(KINDS)
