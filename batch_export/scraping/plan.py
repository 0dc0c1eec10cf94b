"""What is submitted: the batch options, the batches of lines, and what a run may cost.

:class:`BatchOptions` holds the settings that every batch of a run is submitted with (the
API's defaults unless given) and makes the ``POST /v1/batch`` body; :func:`plan_batches` cuts
lines into batches of at most ``batch_size``, each with a digest of its URLs, which is how a
batch is known again (in the state file, and on the server after a lost answer).

Example:

    >>> from batch_export.scraping.inputs import read_urls
    >>> lines = read_urls([f"https://a.example/{n}" for n in range(5)]).valid()
    >>> [batch.lines for batch in plan_batches(lines, batch_size=2, round=0, first=1)]
    [(1, 2), (3, 4), (5,)]
    >>> BatchOptions().request_body(["https://a.example/"])["formats"]
    ['markdown']
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from batch_export.api import MAX_BATCH_URLS, OUTPUT_FORMATS, PROXY_TYPES
from batch_export.errors import InvalidInputError
from batch_export.scraping.inputs import InputLine

__all__ = [
    "FORMATS",
    "MAX_BATCH_SIZE",
    "PROXY_TYPES",
    "BatchOptions",
    "PlannedBatch",
    "plan_batches",
    "urls_digest",
]

MAX_BATCH_SIZE = MAX_BATCH_URLS
FORMATS = OUTPUT_FORMATS
_COUNTRY = re.compile(r"[A-Z]{2}")


def urls_digest(urls: Sequence[str]) -> str:
    """The SHA-256 of the URLs in order, one a line: how a batch is recognised.

    >>> urls_digest(["https://a.example/"])[:12]
    'befde498a45b'
    """
    return hashlib.sha256("\n".join(urls).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, kw_only=True)
class BatchOptions:
    """The settings of every batch: output formats, JavaScript, proxy, headers, batch size."""

    formats: tuple[str, ...] = ("markdown",)
    render_js: bool = False
    proxy_country: str | None = None
    proxy_type: str | None = None
    headers: Mapping[str, str] | None = field(default=None, hash=False)
    batch_size: int = MAX_BATCH_SIZE

    def __post_init__(self) -> None:
        if not self.formats or any(name not in FORMATS for name in self.formats):
            raise InvalidInputError(
                f"--content takes {' and/or '.join(FORMATS)}, got {list(self.formats)}."
            )
        if self.proxy_country is not None and not _COUNTRY.fullmatch(self.proxy_country):
            raise InvalidInputError(
                f"--proxy-country must be two capital letters (US, DE), got {self.proxy_country!r}."
            )
        if self.proxy_type is not None and self.proxy_type not in PROXY_TYPES:
            raise InvalidInputError(
                f"--proxy-type must be one of {', '.join(PROXY_TYPES)}, got {self.proxy_type!r}."
            )
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise InvalidInputError(
                f"--batch-size must be between 1 and {MAX_BATCH_SIZE:,}, got {self.batch_size!r}."
            )
        for name, value in (self.headers or {}).items():
            if not isinstance(name, str) or not isinstance(value, str) or not name:
                raise InvalidInputError(f"Header {name!r} must be a name and a text value.")

    def request_body(self, urls: Sequence[str]) -> dict[str, Any]:
        """The ``POST /v1/batch`` body for ``urls``; options left at the API's default are
        left out, so that the API's own default applies."""
        body: dict[str, Any] = {"urls": list(urls), "formats": list(self.formats)}
        if self.render_js:
            body["render_js"] = True
        if self.proxy_country is not None or self.proxy_type is not None:
            proxy = {"country": self.proxy_country, "type": self.proxy_type}
            body["proxy"] = {key: value for key, value in proxy.items() if value is not None}
        if self.headers:
            body["headers"] = dict(self.headers)
        return body

    def fingerprint(self) -> dict[str, Any]:
        """What the state file records of the options: a rerun must give the same.

        Headers may carry a target's credentials: their names are kept, their values only
        as a digest, so that the state file holds no secret.
        """
        headers = sorted((self.headers or {}).items())
        values = hashlib.sha256(repr(headers).encode("utf-8", "surrogatepass")).hexdigest()
        return {
            "formats": list(self.formats),
            "render_js": self.render_js,
            "proxy_country": self.proxy_country,
            "proxy_type": self.proxy_type,
            "headers": {"names": [name for name, _ in headers], "digest": values[:16]},
            "batch_size": self.batch_size,
        }


@dataclass(frozen=True)
class PlannedBatch:
    """A batch before submission: its number, round (0 first, then one per resubmission),
    the input lines it carries (in the order sent) and the digest of their URLs."""

    number: int
    round: int
    lines: tuple[int, ...]
    digest: str


def plan_batches(
    lines: Sequence[InputLine], *, batch_size: int, round: int, first: int
) -> list[PlannedBatch]:
    """Cut ``lines`` into batches of at most ``batch_size``, numbered from ``first``."""
    batches: list[PlannedBatch] = []
    for start in range(0, len(lines), batch_size):
        chunk = lines[start : start + batch_size]
        number = first + len(batches)
        digest = urls_digest([line.url for line in chunk])
        batches.append(PlannedBatch(number, round, tuple(line.line for line in chunk), digest))
    return batches
