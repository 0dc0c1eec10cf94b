"""Untrusted text, encoded where it lands: JSON (strict) and lines for a terminal or a log.

:func:`encode_json` is what every writer and summary uses: orjson's compact UTF-8 JSON, with
non-ASCII kept as is. What came over the network may hold values that JSON cannot carry (a
``NaN`` that Python's parser accepted, an integer past 64 bits): NaN and the infinities become
``null``, big integers are written exactly by the standard encoder. The result is always valid
JSON that any strict parser reads.

:func:`printable` makes text from the network safe for a terminal or a text log: control
characters (a newline that would forge a log line, an escape sequence that would drive the
terminal) are shown escaped, as Python would write them.

Example:

    >>> encode_json({"a": [1, "ü"], "b": float("nan")})
    b'{"a":[1,"\\xc3\\xbc"],"b":null}'
    >>> strict_json({"n": 2 ** 70})
    '{"n":1180591620717411303424}'
    >>> printable("bad\\x1b[31m code\\nforged")
    'bad\\\\x1b[31m code\\\\nforged'
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from typing import Any

import orjson

__all__ = ["encode_json", "figure", "printable", "shown", "strict_json"]

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def encode_json(value: object) -> bytes:
    """Compact UTF-8 JSON of ``value``; NaN and infinities as null, big integers exact."""
    try:
        return _encode_orjson(value)
    except TypeError:  # integers past 64 bits, which the standard encoder takes
        return _encode_stdlib(value)


def _encode_orjson(value: object) -> bytes:
    # orjson writes NaN and the infinities as null already.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _encode_stdlib(value: object) -> bytes:
    """The same bytes as orjson (``tests/test_text.py`` holds them to it), any integer."""
    text = json.dumps(_finite(value), ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", errors="surrogatepass")


def strict_json(value: object, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """``value`` as strict JSON text (see the module's docstring), optionally indented."""
    return json.dumps(
        _finite(value),
        ensure_ascii=False,
        allow_nan=False,
        indent=indent,
        sort_keys=sort_keys,
        separators=None if indent else (",", ":"),
    )


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def printable(text: str) -> str:
    """``text`` with its control characters escaped (``\\n``, ``\\x1b``), else as it is."""
    if _CONTROL.search(text) is None and not _has_format_characters(text):
        return text
    return _CONTROL.sub(_escaped, "".join(_visible(char) for char in text))


def shown(value: object, *, limit: int = 80) -> str:
    """``value``'s repr, cut to ``limit`` characters, for a message about a value that came.

    >>> shown("x" * 100)[-6:], shown([[[]]])
    ('xxx...', '[[[]]]')
    """
    try:
        text = repr(value)
    except RecursionError:  # nested deeper than repr goes
        text = f"a {type(value).__name__} nested too deep to show"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _escaped(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


def _visible(char: str) -> str:
    # Format characters (bidirectional overrides and the like) reorder what a terminal shows.
    return f"\\u{ord(char):04x}" if unicodedata.category(char) == "Cf" else char


def _has_format_characters(text: str) -> bool:
    return not text.isascii() and any(unicodedata.category(char) == "Cf" for char in text)


def figure(value: float | int | None) -> str:
    """A count or an amount for people: thousands separated, a float rounded, ``?`` unknown.

    >>> figure(1234567), figure(2.5e3), figure(None)
    ('1,234,567', '2,500', '?')
    """
    if value is None:
        return "?"
    return f"{value:,.0f}" if isinstance(value, float) else f"{value:,}"
