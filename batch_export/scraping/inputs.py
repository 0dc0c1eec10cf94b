"""The list of URLs to scrape: read one a line, each line checked and numbered.

Every line of the input is kept, numbered from 1, so that the table has one row per line and
joins back to the user's own list. A line is *valid* when, stripped of the blanks around it,
it is an ``http`` or ``https`` URL with a host, no blank or control character inside, and at
most 2,048 characters; any other line (an empty one included) gets its row too, marked
``invalid`` with the reason. The API may still refuse a URL that passes here (it has its own
rules); such a line is marked when its batch is answered.

Example:

    >>> urls = read_urls(["https://a.example/", "", "ftp://b.example/", "https://a.example/"])
    >>> [(line.line, line.problem) for line in urls.lines][:3]
    [(1, None), (2, 'empty line'), (3, "scheme 'ftp' is not http or https")]
    >>> urls.counts()
    {'lines': 4, 'valid': 2, 'invalid': 2, 'duplicates': 1}
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from batch_export.errors import InvalidInputError

__all__ = ["MAX_LINES", "MAX_URL_CHARS", "InputLine", "UrlInput", "check_url", "read_urls"]

MAX_URL_CHARS = 2048
# A bound on the input, so that a wrong file (a disk image, /dev/zero) fails in one sentence.
MAX_LINES = 10_000_000
_MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True)
class InputLine:
    """One line of the input: its number (from 1), its text stripped, why it is not valid."""

    line: int
    url: str
    problem: str | None = None

    @property
    def valid(self) -> bool:
        """True when the line is sent to the API."""
        return self.problem is None


@dataclass(frozen=True)
class UrlInput:
    """Every line of the input, and a digest that tells this input from any other."""

    lines: tuple[InputLine, ...]
    digest: str
    source: str

    def valid(self) -> list[InputLine]:
        """The lines sent to the API, in input order."""
        return [line for line in self.lines if line.valid]

    def counts(self) -> dict[str, int]:
        """Lines, valid and invalid lines, and valid lines that repeat an earlier URL."""
        valid = self.valid()
        return {
            "lines": len(self.lines),
            "valid": len(valid),
            "invalid": len(self.lines) - len(valid),
            "duplicates": len(valid) - len({line.url for line in valid}),
        }


def check_url(text: str) -> str | None:
    """Why ``text`` cannot be sent as a URL, or None when it can.

    >>> check_url("https://quotes.toscrape.com/page/2/") is None
    True
    >>> check_url("https://exa mple.com/")
    'a blank or control character inside the URL'
    """
    if not text:
        return "empty line"
    if len(text) > MAX_URL_CHARS:
        return f"longer than {MAX_URL_CHARS:,} characters"
    if any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in text):
        return "a blank or control character inside the URL"
    try:
        parts = urlsplit(text)
        host = parts.hostname
        parts.port  # noqa: B018  (a port that is not a number raises here)
    except ValueError as error:
        return f"not a URL ({error})"
    if parts.scheme.lower() not in ("http", "https"):
        return f"scheme {parts.scheme!r} is not http or https" if parts.scheme else "no scheme"
    if not host:
        return "no host"
    return None


def read_urls(source: str | os.PathLike[str] | Iterable[str], *, option: str = "URLS") -> UrlInput:
    """Read the input: a file of one URL a line, ``-`` for stdin, or the URLs themselves.

    A file is read as UTF-8 (a byte order mark is skipped); a line that is not UTF-8 is an
    :class:`~batch_export.errors.InvalidInputError` naming its number.
    """
    if isinstance(source, str | os.PathLike):
        name = os.fspath(source)
        if name == "-":
            return _from_stream(sys.stdin.buffer, "stdin", option)
        try:
            with Path(name).open("rb") as handle:
                return _from_stream(handle, name, option)
        except OSError as error:
            reason = error.strerror or str(error)
            raise InvalidInputError(f"Cannot read {option} '{name}': {reason}.") from None
    texts = []
    for number, text in enumerate(source, start=1):
        if not isinstance(text, str):
            raise InvalidInputError(f"URL {number} is a {type(text).__name__}, not a string.")
        texts.append(text)
        _check_count(number, "the list", option)
    return _numbered(texts, "the list")


def _from_stream(handle: BinaryIO, name: str, option: str) -> UrlInput:
    texts = []
    for number, raw in enumerate(iter(lambda: handle.readline(_MAX_LINE_BYTES + 1), b""), 1):
        if len(raw) > _MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise InvalidInputError(
                f"Line {number} of {name} is longer than {_MAX_LINE_BYTES:,} bytes: "
                f"{option} must hold one URL a line."
            )
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            texts.append(raw.decode("utf-8").rstrip("\r\n"))
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"Line {number} of {name} is not UTF-8 text: {option} must be a text file "
                "of one URL a line."
            ) from None
        _check_count(number, name, option)
    return _numbered(texts, name)


def _check_count(number: int, name: str, option: str) -> None:
    if number > MAX_LINES:
        raise InvalidInputError(
            f"{name} has more than {MAX_LINES:,} lines: split {option} into several runs."
        )


def _numbered(texts: list[str], source: str) -> UrlInput:
    digest = hashlib.sha256()
    lines = []
    for number, text in enumerate(texts, start=1):
        url = text.strip()
        digest.update(url.encode("utf-8", "surrogatepass") + b"\n")
        lines.append(InputLine(number, url, check_url(url)))
    return UrlInput(tuple(lines), digest.hexdigest(), source)
