"""The input: every line kept and numbered, each URL checked, the file read as UTF-8 text."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from batch_export.errors import InvalidInputError
from batch_export.scraping.inputs import check_url, read_urls


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("https://quotes.toscrape.com/page/2/", None),
        ("http://localhost:8080/x", None),
        ("HTTPS://A.EXAMPLE/", None),
        ("", "empty line"),
        ("quotes.toscrape.com", "no scheme"),
        ("ftp://a.example/", "scheme 'ftp' is not http or https"),
        ("javascript:void(0)", "scheme 'javascript' is not http or https"),
        ("https://", "no host"),
        ("https://a.example/a b", "a blank or control character inside the URL"),
        ("https://a.example/\x1b[2J", "a blank or control character inside the URL"),
        (
            "https://a.example:port/",
            "not a URL (Port could not be cast to integer value as 'port')",
        ),
        ("https://a.example/" + "x" * 2048, "longer than 2,048 characters"),
    ],
)
def test_each_line_is_checked(text: str, problem: str | None) -> None:
    assert check_url(text) == problem


def test_every_line_is_kept_numbered_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(b"\xef\xbb\xbfhttps://a.example/\r\n  https://b.example/  \n\nnope\n")
    urls = read_urls(path)
    assert [(line.line, line.url, line.valid) for line in urls.lines] == [
        (1, "https://a.example/", True),
        (2, "https://b.example/", True),
        (3, "", False),
        (4, "nope", False),
    ]
    assert urls.digest == read_urls(["https://a.example/", "https://b.example/", "", "nope"]).digest
    assert urls.digest != read_urls(["https://b.example/", "https://a.example/", "", "nope"]).digest


def test_stdin_is_read_for_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(b"https://a.example/\nhttps://a.example/"))
    monkeypatch.setattr(sys, "stdin", stdin)
    assert read_urls("-").counts() == {"lines": 2, "valid": 2, "invalid": 0, "duplicates": 1}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"https://a.example/\n\xff\xfe\n", "Line 2 of {path} is not UTF-8 text"),
        (b"x" * 70_000, "Line 1 of {path} is longer than 65,536 bytes"),
    ],
)
def test_a_file_that_is_not_a_list_of_urls_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "urls.txt"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=message.format(path=path)):
        read_urls(path)


def test_a_missing_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"Cannot read URLS '.*nope.txt': No such file"):
        read_urls(tmp_path / "nope.txt")
