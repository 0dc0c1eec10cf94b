"""The API key: checked before it travels, hidden from every text and value that could show it.

A key travels in the ``X-Api-Key`` header, so a control character (a trailing CR or LF from a
key file saved on Windows) or a non-ASCII one is refused before any request, in a message
that does not show the key.

What a server writes back may echo the key, whole or cut, in an error or in the data itself.
One rule hides it everywhere: every run of 8 or more consecutive characters of the key becomes
:data:`HIDDEN` (``<hidden>``). The rule is one regular expression (:func:`key_patterns`),
read alike by Python's ``re`` (errors, a job's fields: :class:`Secret`) and by RE2 (the item
columns, in :mod:`batch_export.flatten.scrub`). What is left holds no 8 characters of the key
in a row. A key shorter than 8 characters is hidden whole in error texts only: in the data,
hiding it would cut every word that holds it.

Example:

    >>> redact("echo: canary-7f3a9c1e-nev", "canary-7f3a9c1e-never-print-me")
    'echo: <hidden>'
    >>> Secret("canary-7f3a9c1e-never-print-me").hide({"note": "k=canary-7f3a9c1e-never"})
    ({'note': 'k=<hidden>'}, 1)
"""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass
from typing import Any

from batch_export.errors import ApiError, BatchExportError, InvalidInputError
from batch_export.job import JobStatus

__all__ = [
    "HIDDEN",
    "KEY_PIECE",
    "KeyPatterns",
    "Secret",
    "check_api_key",
    "key_patterns",
    "redact",
    "scrub",
]

KEY_PIECE = 8
HIDDEN = "<hidden>"
# How far past its first 8 characters one match follows the key: the pattern grows with the
# square of this. A longer run is hidden as several markers in a row.
_RUN_REACH = 120
# The fields of a job's status that hold the server's text (job_id is the one asked for).
_JOB_TEXT_FIELDS = ("status", "created_at", "completed_at", "invalid_urls", "batch_config", "extra")


def check_api_key(api_key: str) -> str:
    """Return ``api_key`` if it can travel in a header; the message never shows the key.

    Example:

        >>> check_api_key("k-123")
        'k-123'
    """
    for position, char in enumerate(api_key, start=1):
        if not (" " <= char <= "~"):
            what = "a non-ASCII character" if ord(char) > 127 else "a control character"
            raise InvalidInputError(
                f"The API key has {what} (CR, LF, tab, accents, ...) at position {position} of "
                f"{len(api_key)}: remove it (a key file saved with a line ending?) and pass the "
                "key again."
            )
    return api_key


@dataclass(frozen=True, repr=False)
class KeyPatterns:
    """The key's rule as regular expressions that Python's ``re`` and RE2 both read.

    ``quads`` are the key's distinct pieces of 4 characters (every run of 8 holds one whole,
    wherever a text is cut into 4-byte words: a vectorised first look); ``pieces`` finds
    whether a text holds any 8 characters of the key in a row; ``runs`` matches each such
    run, as far as it follows the key; ``marker`` replaces it. The repr shows none of them:
    they spell the key.
    """

    quads: tuple[str, ...]
    pieces: str
    runs: str
    marker: str = HIDDEN

    def __repr__(self) -> str:
        return "KeyPatterns(<hidden>)"


def key_patterns(secret: str | None) -> KeyPatterns | None:
    """The patterns that hide ``secret`` in data; None for no key or one shorter than 8.

    Example:

        >>> import re
        >>> runs = key_patterns("abcdefghij").runs
        >>> re.sub(runs, HIDDEN, "x abcdefghij y cdefghijk z abcdefg")
        'x <hidden> y <hidden>k z abcdefg'
    """
    if not secret or len(secret) < KEY_PIECE:
        return None
    starts = range(len(secret) - KEY_PIECE + 1)
    pieces = sorted({secret[i : i + KEY_PIECE] for i in starts})
    runs = [
        _literal(secret[i : i + KEY_PIECE]) + _prefixes(secret[i + KEY_PIECE : i + _RUN_REACH])
        for i in starts
    ]
    quads = tuple(sorted({secret[i : i + 4] for i in range(len(secret) - 3)}))
    return KeyPatterns(quads=quads, pieces="|".join(map(_literal, pieces)), runs="|".join(runs))


def _literal(text: str) -> str:
    # \xHH for every character but letters and digits: the one escape both engines read.
    return "".join(char if char.isalnum() else f"\\x{ord(char):02x}" for char in text)


def _prefixes(text: str) -> str:
    """A pattern for the longest prefix of ``text`` that follows (perhaps none): greedy."""
    pattern = ""
    for char in reversed(text):
        pattern = f"(?:{_literal(char)}{pattern})?"
    return pattern


@functools.lru_cache(maxsize=8)
def _compiled(secret: str) -> re.Pattern[str] | None:
    patterns = key_patterns(secret)
    return None if patterns is None else re.compile(patterns.runs)


def redact(text: str, secret: str | None, *, short_too: bool = True) -> str:
    """``text`` with every run of 8 or more of the ``secret``'s characters hidden.

    A secret shorter than 8 characters is hidden where it appears whole (unless
    ``short_too`` is false: our own words would be cut to pieces by a one-letter key).

    Example:

        >>> redact("key=abcdefghij and abcdefgh...", "abcdefghij")
        'key=<hidden> and <hidden>...'
    """
    if not secret or not text:
        return text
    runs = _compiled(secret)
    if runs is None:
        return text.replace(secret, HIDDEN) if short_too else text
    return runs.sub(HIDDEN, text)


def scrub(error: BatchExportError, secret: str | None) -> None:
    """Hide ``secret`` in every text ``error`` carries (what the server wrote may echo it)."""
    if not secret:
        return
    error.message = redact(error.message, secret, short_too=False)
    error.args = (error.message,)
    if error.url is not None:
        error.url = redact(error.url, secret, short_too=False)
    if isinstance(error, ApiError):
        error.code = None if error.code is None else redact(error.code, secret, short_too=False)
        cid = error.correlation_id
        error.correlation_id = None if cid is None else redact(cid, secret, short_too=False)


class Secret:
    """The API key, held to hide it: in errors, in JSON values, in a job's fields.

    Its repr never shows the key. A key shorter than 8 characters (or none) hides nothing.

    Example:

        >>> secret = Secret("canary-7f3a9c1e-never-print-me")
        >>> secret
        Secret(<hidden>)
        >>> secret.hide(["x", {"canary-7f3a9c1e": 1}])
        (['x', {'<hidden>': 1}], 1)
    """

    def __init__(self, key: str | None) -> None:
        self._key = key
        self._runs = _compiled(key) if key else None
        self.patterns = key_patterns(key)

    def __repr__(self) -> str:
        return "Secret(<hidden>)"

    def scrub(self, error: BatchExportError) -> None:
        """Hide the key in every text ``error`` carries."""
        scrub(error, self._key)

    def hide(self, value: Any) -> tuple[Any, int]:
        """``value`` (text, or JSON: objects' keys too) with every run of the key hidden,
        and how many runs were hidden. An unchanged value is returned as it is; two names of
        one object that become alike are told apart by a number (``<hidden> (2)``)."""
        if self._runs is None:
            return value, 0
        return _hidden(value, self._runs)

    def hide_in_job(self, job: JobStatus) -> tuple[JobStatus, int]:
        """``job`` with the key hidden in every field the server wrote, and how many runs."""
        changes: dict[str, Any] = {}
        total = 0
        for name in _JOB_TEXT_FIELDS:
            value, count = self.hide(getattr(job, name))
            if count:
                changes[name], total = value, total + count
        return (dataclasses.replace(job, **changes) if changes else job), total


def _hidden(value: Any, runs: re.Pattern[str]) -> tuple[Any, int]:
    # Recursion is bounded: the job's answer is refused past MAX_DEPTH levels (batch_export.job).
    if isinstance(value, str):
        return runs.subn(HIDDEN, value) if runs.search(value) else (value, 0)
    if isinstance(value, list | tuple):
        items = [_hidden(item, runs) for item in value]
        total = sum(count for _, count in items)
        if not total:
            return value, 0
        return type(value)(item for item, _ in items), total
    if isinstance(value, dict):
        pairs = [(_hidden(k, runs), _hidden(v, runs)) for k, v in value.items()]
        total = sum(kc + vc for (_, kc), (_, vc) in pairs)
        if not total:
            return value, 0
        hidden: dict[str, Any] = {}
        for (name, _), (item, _) in pairs:
            # Two names the key made alike keep both values: "<hidden>", "<hidden> (2)".
            unique, n = name, 2
            while unique in hidden:
                unique, n = f"{name} ({n})", n + 1
            hidden[unique] = item
        return hidden, total
    return value, 0
