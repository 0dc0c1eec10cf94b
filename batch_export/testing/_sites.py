"""The sites that scraped pages come from: page blocks and templates, one section a site.

Private to :mod:`batch_export.testing.content`. A site gives an item its address (URL, title
and a heading block unique to the item), an endless stream of body blocks, and links. A block
is the same piece of page as ``(markdown, html)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html import escape

Block = tuple[str, str]  # the same piece of a page, as (markdown, html)


# --- blocks -----------------------------------------------------------------------------


def heading(level: int, text: str) -> Block:
    return f"{'#' * level} {text}", f"<h{level}>{escape(text)}</h{level}>"


def para(text: str) -> Block:
    return text, f"<p>{escape(text)}</p>"


def _bullets(items: list[str]) -> Block:
    md = "\n".join(f"- {item}" for item in items)
    return md, "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def _table(header: list[str], rows: list[list[str]]) -> Block:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return "\n".join(lines), f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _code(lang: str, text: str) -> Block:
    return (
        f"```{lang}\n{text}\n```",
        f'<pre><code class="language-{lang}">{escape(text)}</code></pre>',
    )


def _slug(text: str) -> str:
    kept = "".join(ch if ch.isalnum() else "-" for ch in text.lower())
    return "-".join(part for part in kept.split("-") if part)


# --- sentences --------------------------------------------------------------------------

_SUBJECTS = (
    "The city council", "Regional transit officials", "The state utility commission",
    "A coalition of local businesses", "Researchers at the university", "The planning board",
    "Residents of the harbor district", "The mayor's office",
)  # fmt: skip
_VERBS = (
    "approved", "delayed a vote on", "unveiled", "criticized", "proposed", "began reviewing",
    "quietly revised", "defended",
)  # fmt: skip
_OBJECTS = (
    "a plan to extend the light-rail line to the airport", "new rules for short-term rentals",
    "a $48 million budget for road repairs", "the long-awaited flood barrier project",
    "a pilot program for electric buses", "changes to the zoning code near the old rail yards",
    "a proposal to turn two downtown blocks into a pedestrian zone",
)  # fmt: skip
_TAILS = (
    " on Tuesday", " after months of debate", " in a 7-2 vote", "",
    " despite objections from several neighborhood groups",
    " following a public hearing that ran past midnight",
)  # fmt: skip
_SAYINGS = (
    "We have waited long enough for this", "The numbers simply do not add up",
    "Nobody asked the people who actually live here", "This is a once-in-a-generation chance",
    "We will keep a close eye on the costs", "It is a good first step, but only a first step",
)  # fmt: skip
_PEOPLE = (
    ("Maria Alvarez", "who chairs the transportation committee"),
    ("David Chen", "a spokesman for the utility"), ("Priya Natarajan", "an urban economist"),
    ("Tom Becker", "who has run a bakery on Main Street for 22 years"),
    ("Leah Goldberg", "the council's budget director"),
)  # fmt: skip


def _news_sentence(rng: random.Random) -> str:
    if rng.random() < 0.25:
        name, role = rng.choice(_PEOPLE)
        return f'"{rng.choice(_SAYINGS)}," said {name}, {role}.'
    verb, obj, tail = rng.choice(_VERBS), rng.choice(_OBJECTS), rng.choice(_TAILS)
    return f"{rng.choice(_SUBJECTS)} {verb} {obj}{tail}."


def _paragraph(rng: random.Random, sentence: Callable[[random.Random], str]) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 4)))


# --- quotes.toscrape.com ----------------------------------------------------------------

_QUOTES = (
    ("The world as we have created it is a process of our thinking. It cannot be changed "
     "without changing our thinking.", "Albert Einstein", "change deep-thoughts thinking world"),
    ("It is our choices, Harry, that show what we truly are, far more than our abilities.",
     "J.K. Rowling", "abilities choices"),
    ("There are only two ways to live your life. One is as though nothing is a miracle. The "
     "other is as though everything is a miracle.", "Albert Einstein", "inspirational life"),
    ("The person, be it gentleman or lady, who has not pleasure in a good novel, must be "
     "intolerably stupid.", "Jane Austen", "aliteracy books classic humor"),
    ("Imperfection is beauty, madness is genius and it's better to be absolutely ridiculous "
     "than absolutely boring.", "Marilyn Monroe", "be-yourself inspirational"),
    ("Try not to become a man of success. Rather become a man of value.", "Albert Einstein",
     "adulthood success value"),
    ("It is better to be hated for what you are than to be loved for what you are not.",
     "André Gide", "life love"),
    ("I have not failed. I've just found 10,000 ways that won't work.", "Thomas A. Edison",
     "edison failure inspirational paraphrased"),
    ("A woman is like a tea bag; you never know how strong it is until it's in hot water.",
     "Eleanor Roosevelt", "misattributed-eleanor-roosevelt"),
    ("A day without sunshine is like, you know, night.", "Steve Martin", "humor obvious simile"),
)  # fmt: skip
_QUOTES_HOST = "https://quotes.toscrape.com"


def _author_slug(author: str) -> str:
    return author.replace("é", "e").replace(" ", "-").replace(".", "-")


def _quote_block(rng: random.Random) -> Block:
    text, author, tags = rng.choice(_QUOTES)
    about = f"{_QUOTES_HOST}/author/{_author_slug(author)}"
    tag_md = " ".join(f"[{t}]({_QUOTES_HOST}/tag/{t}/page/1/)" for t in tags.split())
    tag_html = "".join(f'<a class="tag" href="/tag/{t}/page/1/">{t}</a>' for t in tags.split())
    md = f"> “{text}”\n>\n> by {author} [(about)]({about})\n>\n> Tags: {tag_md}"
    html = (
        f'<div class="quote"><span class="text">“{escape(text)}”</span><span>by '
        f'<small class="author">{escape(author)}</small> <a href="{about}">(about)</a></span>'
        f'<div class="tags">Tags: {tag_html}</div></div>'
    )
    return md, html


def _quotes_address(rng: random.Random, index: int) -> tuple[str, str, Block]:
    tag = rng.choice(_QUOTES)[2].split()[0]
    number = index + 1
    if rng.random() < 0.5:
        return f"{_QUOTES_HOST}/page/{number}/", "Quotes to Scrape", para(f"Page {number}")
    url = f"{_QUOTES_HOST}/tag/{tag}/page/{number}/"
    return url, "Quotes to Scrape", para(f"Viewing tag: {tag}, page {number}")


def _quotes_blocks(rng: random.Random) -> Iterator[Block]:
    while True:
        yield _quote_block(rng)


def _quotes_link(rng: random.Random) -> str:
    _text, author, tags = rng.choice(_QUOTES)
    if rng.random() < 0.5:
        return f"{_QUOTES_HOST}/author/{_author_slug(author)}"
    return f"{_QUOTES_HOST}/tag/{rng.choice(tags.split())}/page/1/"


# --- books.toscrape.com -----------------------------------------------------------------

_BOOKS = (
    "A Light in the Attic", "Tipping the Velvet", "Soumission", "Sharp Objects",
    "Sapiens: A Brief History of Humankind", "The Requiem Red", "The Black Maria",
    "The Dirty Little Secrets of Getting Your Dream Job", "Shakespeare's Sonnets", "Set Me Free",
    "Starving Hearts (Triangular Trade Trilogy, #1)", "Rip it Up and Start Again", "Olio",
    "Scott Pilgrim's Precious Little Life (Scott Pilgrim #1)", "Libertarianism for Beginners",
    "It's Only the Himalayas", "Mesaerion: The Best Science Fiction Stories 1800-1849",
)  # fmt: skip
_CATEGORIES = ("Poetry", "Historical Fiction", "Fiction", "Mystery", "History", "Travel")
_RATINGS = ("One", "Two", "Three", "Four", "Five")
_BOOKS_HOST = "https://books.toscrape.com"
_BLURBS = (
    "A story of friendship and betrayal that moves from a seaside town to the heart of London.",
    "Told in short, sharp chapters, it follows a reporter who returns home to cover a crime.",
    "The author draws on letters, diaries and court records to bring a forgotten era to life.",
    "Funny and unsentimental, it is the kind of book that readers press on their friends.",
    "Each poem is short enough to read aloud, and strange enough to remember for days.",
    "It asks what we owe the people we leave behind, and gives no easy answers.",
)  # fmt: skip


def _books_address(rng: random.Random, index: int) -> tuple[str, str, Block]:
    title = rng.choice(_BOOKS)
    url = f"{_BOOKS_HOST}/catalogue/{_slug(title)}_{index + 1}/index.html"
    crumbs = f"[Home]({_BOOKS_HOST}/index.html) / Books / {rng.choice(_CATEGORIES)} / {title}"
    return url, title, para(f"{crumbs} · Catalogue number {index + 1}")


def _books_blocks(rng: random.Random) -> Iterator[Block]:
    price = f"£{rng.randint(10, 59)}.{rng.randint(0, 99):02d}"
    stock = f"In stock ({rng.randint(1, 22)} available)"
    yield para(f"{price} · {stock} · Rated {rng.choice(_RATINGS)} out of Five")
    yield heading(2, "Product Description")
    yield para(" ".join(rng.sample(_BLURBS, 3)))
    yield heading(2, "Product Information")
    upc = f"{rng.getrandbits(64):016x}"
    rows = [["UPC", upc], ["Product Type", "Books"], ["Price (excl. tax)", price]]
    rows += [["Tax", "£0.00"], ["Availability", stock], ["Number of reviews", "0"]]
    yield _table(["Field", "Value"], rows)
    yield heading(2, "Products you recently viewed")
    while True:
        title = rng.choice(_BOOKS)
        yield para(f"{title}: £{rng.randint(10, 59)}.{rng.randint(0, 99):02d}, In stock")


def _books_link(rng: random.Random) -> str:
    if rng.random() < 0.3:
        category = rng.choice(_CATEGORIES)
        number = rng.randint(2, 50)
        return f"{_BOOKS_HOST}/catalogue/category/books/{_slug(category)}_{number}/index.html"
    return f"{_BOOKS_HOST}/catalogue/{_slug(rng.choice(_BOOKS))}_{rng.randint(1, 1000)}/index.html"


# --- a news article ---------------------------------------------------------------------

_NEWS_HOST = "https://news.example.com"
_BYLINES = ("Hannah Okafor", "James Whitfield", "Sofia Marquez", "Daniel Park")


def _news_address(rng: random.Random, index: int) -> tuple[str, str, Block]:
    subject = rng.choice(_SUBJECTS)
    title = f"{subject} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    day = index % 28 + 1
    url = f"{_NEWS_HOST}/2026/05/{day:02d}/{_slug(title)[:60].rstrip('-')}-{index}"
    minutes = rng.randint(3, 9)
    byline = f"By {rng.choice(_BYLINES)} · May {day}, 2026 · {minutes} min read"
    return url, title, para(f"{byline} · Story {index + 1}")


_NEWS_SECTIONS = ("How we got here", "What it will cost", "What residents say", "What comes next")


def _news_blocks(rng: random.Random) -> Iterator[Block]:
    sections = list(_NEWS_SECTIONS)
    rng.shuffle(sections)
    while True:
        for _ in range(rng.randint(2, 4)):
            yield para(_paragraph(rng, _news_sentence))
        yield heading(2, sections.pop() if sections else "More on this story")


def _news_link(rng: random.Random) -> str:
    title = f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)}"
    return f"{_NEWS_HOST}/2026/05/{rng.randint(1, 28):02d}/{_slug(title)[:60].rstrip('-')}"


# --- a shop's product page --------------------------------------------------------------

_BRANDS = ("Trailhead", "Aeroflow", "Northwind", "Kestrel", "Lumen & Oak")
_PRODUCTS = (
    "40L Hiking Backpack", "Ceramic Pour-Over Kettle", "Insulated Water Bottle",
    "Wireless Desk Lamp", "Merino Wool Beanie", "Cast Iron Skillet",
)  # fmt: skip
_FEATURES = (
    "Free shipping on orders over $50", "Two-year limited warranty", "Recycled materials",
    "Ships in plastic-free packaging", "Machine washable", "Fits carry-on size limits",
)  # fmt: skip
_REVIEWS = (
    "Exactly as described, and it arrived two days early.", "Solid build, a bit heavier than "
    "I expected.", "Third one I have bought; they hold up well.", "The color is darker than in "
    "the photos, but I still like it.", "Customer service replaced a faulty part within a week.",
)  # fmt: skip
_SHOP_HOST = "https://shop.example.com"


def _product_address(rng: random.Random, index: int) -> tuple[str, str, Block]:
    title = f"{rng.choice(_BRANDS)} {rng.choice(_PRODUCTS)}"
    url = f"{_SHOP_HOST}/products/{_slug(title)}?variant={40000 + index}"
    return url, title, para(f"${rng.randint(19, 249)}.00 · SKU {100000 + index}")


def _product_blocks(rng: random.Random) -> Iterator[Block]:
    yield heading(2, "Key features")
    yield _bullets(rng.sample(_FEATURES, 4))
    yield heading(2, "Specifications")
    rows = [["Weight", f"{rng.randint(150, 2400)} g"], ["Color", rng.choice(("Slate", "Sand"))]]
    rows.append(["Material", rng.choice(("Recycled nylon", "Stainless steel", "Merino wool"))])
    yield _table(["Spec", "Value"], rows)
    yield heading(2, "Customer reviews")
    while True:
        stars = "★" * rng.randint(3, 5)
        yield para(f"{stars} {rng.choice(_BYLINES)}: {rng.choice(_REVIEWS)}")


def _product_link(rng: random.Random) -> str:
    return f"{_SHOP_HOST}/products/{_slug(rng.choice(_BRANDS) + ' ' + rng.choice(_PRODUCTS))}"


# --- an API docs page -------------------------------------------------------------------

_DOC_TOPICS = ("Authentication", "Pagination", "Rate limits", "Webhooks", "Errors", "Batch jobs")
_DOC_SENTENCES = (
    "Every request must carry your key in the `X-Api-Key` header.",
    "Responses are JSON, and timestamps are ISO 8601 in UTC.",
    "Requests over the limit are answered with 429; wait and retry with backoff.",
    "Pages are 1-based, and a short page marks the end of the results.",
    "Unknown fields may be added at any time; clients should ignore what they do not use.",
    "Errors carry a `code`, a readable `message` and a `correlation_id` for support.",
)  # fmt: skip
_DOCS_HOST = "https://docs.example.com"


def _docs_address(rng: random.Random, index: int) -> tuple[str, str, Block]:
    topic = rng.choice(_DOC_TOPICS)
    url = f"{_DOCS_HOST}/api/v{index % 3 + 1}/{_slug(topic)}"
    crumbs = f"[Docs]({_DOCS_HOST}/) / API reference / {topic}"
    return url, topic, para(f"{crumbs} · Revision {index + 1}")


def _docs_blocks(rng: random.Random) -> Iterator[Block]:
    yield para(" ".join(rng.sample(_DOC_SENTENCES, 3)))
    rows = [["`page`", "integer", "1"], ["`page_size`", "integer", "10"]]
    yield _table(["Parameter", "Type", "Default"], rows)
    number = 0
    while True:
        number += 1
        yield heading(3, f"Example {number}")
        yield para(rng.choice(_DOC_SENTENCES))
        page = rng.randint(1, 9)
        curl = f'curl "{_DOCS_HOST.replace("docs", "api")}/v1/batch/JOB_ID?page={page}" \\\n'
        yield _code("bash", curl + '  -H "X-Api-Key: $API_KEY"')


def _docs_link(rng: random.Random) -> str:
    return f"{_DOCS_HOST}/api/v1/{_slug(rng.choice(_DOC_TOPICS))}"


# --- the registry -----------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    address: Callable[[random.Random, int], tuple[str, str, Block]]
    blocks: Callable[[random.Random], Iterator[Block]]
    link: Callable[[random.Random], str]


SITES: dict[str, Site] = {
    "quotes": Site(_quotes_address, _quotes_blocks, _quotes_link),
    "books": Site(_books_address, _books_blocks, _books_link),
    "news": Site(_news_address, _news_blocks, _news_link),
    "product": Site(_product_address, _product_blocks, _product_link),
    "docs": Site(_docs_address, _docs_blocks, _docs_link),
}
