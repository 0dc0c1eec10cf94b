"""Untrusted text, encoded where it lands: JSON (strict) and lines for a terminal or a log.

:func:`encode_json` is what every writer and summary uses: orjson's compact UTF-8 JSON, with
non-ASCII kept as is. What came over the network may hold values that JSON cannot carry (a
``NaN`` that Python's parser accepted, an integer past 64 bits): NaN and the infinities become
``null``, big integers are written exactly by the standard encoder. The result is always valid
JSON that any strict parser reads.

:func:`read_json` is the other way: JSON that came over the network (or in a file someone
sent), read with every value kept whole where it can be. Integers of any size stay exact (2**70
is 1180591620717411303424, not a float). What no JSON reader holds is changed by a fixed rule
and counted, never silently: a byte that is not UTF-8 and a lone surrogate escape (``\\ud800``)
become U+FFFD, and ``NaN``, ``Infinity``, ``-Infinity`` and numbers past what a float or an
integer can hold (``1e400``, 5,000 digits) become null. Arrays and objects nested more than
:data:`MAX_DEPTH` levels deep are refused before any recursive code of ours runs.

:func:`printable` makes text from the network safe for a terminal or a text log: control
characters (a newline that would forge a log line, an escape sequence that would drive the
terminal) are shown escaped, as Python would write them.

Example:

    >>> encode_json({"a": [1, "ü"], "b": float("nan")})
    b'{"a":[1,"\\xc3\\xbc"],"b":null}'
    >>> strict_json({"n": 2 ** 70})
    '{"n":1180591620717411303424}'
    >>> read_json(b'{"n": 1180591620717411303424, "x": NaN}')
    ParsedJson(value={'n': 1180591620717411303424, 'x': None}, changed={'x': 1})
    >>> printable("bad\\x1b[31m code\\nforged")
    'bad\\\\x1b[31m code\\\\nforged'
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson

__all__ = [
    "MAX_DEPTH",
    "JsonTooDeep",
    "NotJson",
    "ParsedJson",
    "encode_json",
    "figure",
    "printable",
    "read_json",
    "shown",
    "strict_json",
    "too_deep",
]

# The deepest nesting of arrays and objects read, the outermost one counted as the first: the
# README's bound. The API's answers nest 5 levels deep (answer, results, item, data, links).
MAX_DEPTH = 64

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


def shown(value: object, *, limit: int = 80, whole: bool = True) -> str:
    """``value``'s repr, cut to ``limit`` characters, for a message about a value that came.

    ``whole=False`` names a JSON object or array by its kind rather than showing it (for a
    message saying a field has the wrong type). An integer too long to be worth showing (or
    past the interpreter's limit on digits) is "a huge int".

    >>> shown("x" * 100)[-6:], shown([[[]]]), shown({"a": 1}, whole=False), shown(10**40)
    ("xx...'", '[[[]]]', 'a JSON object', 'a huge int')
    """
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return "a huge int"
    if not whole and isinstance(value, dict | list | tuple):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    try:
        text = repr(value)
    except RecursionError:  # nested deeper than repr goes
        text = f"a {type(value).__name__} nested too deep to show"
    if len(text) <= limit:
        return text
    return text[: limit - 4] + "...'" if isinstance(value, str) else text[: limit - 3] + "..."


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


# --- reading JSON that came from outside ------------------------------------------------------


class NotJson(ValueError):
    """Bytes that are not one JSON value (cut short, trailing garbage, a byte-order mark...)."""


class JsonTooDeep(ValueError):
    """JSON whose arrays and objects nest deeper than :data:`MAX_DEPTH` levels.

    ``field`` is the top-level key under which it does, when the top is an object and that is
    known (a parser that gave up before us cannot say).
    """

    def __init__(self, field: str | None = None) -> None:
        super().__init__(f"nested deeper than {MAX_DEPTH} levels")
        self.field = field


@dataclass(frozen=True)
class ParsedJson:
    """A JSON value read by :func:`read_json`, and what had to change to hold it.

    ``changed`` counts the changed values (texts, keys, numbers) under each top-level key of an
    object ("" for a top that is not an object); it is empty when nothing changed.
    """

    value: Any
    changed: dict[str, int] = field(default_factory=dict)


# A number that no reader holds (NaN, 1e400, 5,000 digits), on its way to becoming null.
_UNHELD = object()
# Lone surrogates: escaped ones (\ud800) as the standard parser leaves them, and the bytes that
# are not UTF-8, which surrogateescape turns into U+DC80..U+DCFF.
_SURROGATE = re.compile("[\ud800-\udfff]")


def read_json(content: bytes, *, limit: int = MAX_DEPTH) -> ParsedJson:
    """``content`` as a JSON value, integers exact; raise :class:`NotJson` or :class:`JsonTooDeep`.

    Read by msgspec, which keeps integers of any size; an answer it refuses is read again by
    the standard parser, whose values are then made valid (see the module's docstring).
    Both parsers stop at Python's recursion limit by themselves, with an error, and the
    nesting of what they read is checked without recursion before anything else walks it.

    >>> read_json(b'["a\\\\ud800", 1e400]').changed
    {'': 2}
    >>> try:
    ...     read_json(b"[" * 65 + b"]" * 65)
    ... except JsonTooDeep as error:
    ...     print(error)
    nested deeper than 64 levels
    """
    try:
        value = msgspec.json.decode(content)
    except RecursionError:
        raise JsonTooDeep() from None
    except msgspec.DecodeError:  # ValidationError (a number out of range) is one too
        return _read_lenient(content, limit)
    _check_nesting(value, limit)
    return ParsedJson(value)


def too_deep(value: object, *, limit: int = MAX_DEPTH, level: int = 1) -> str | None:
    """Where ``value`` nests past ``limit`` levels, or None when it does not; no recursion.

    ``level`` is the level ``value`` itself is at (1: it is the outermost). The answer is the
    top-level key under which the nesting goes too deep, "" when ``value`` is not an object.

    >>> too_deep({"a": [1], "b": [[[]]]}, limit=3), too_deep([[1]], limit=3)
    ('b', None)
    """
    if not isinstance(value, dict | list):
        return None
    if level > limit:
        return ""
    top = value.items() if isinstance(value, dict) else (("", child) for child in value)
    for key, child in top:
        stack: list[tuple[object, int]] = [(child, level + 1)]
        while stack:
            node, depth = stack.pop()
            if isinstance(node, dict | list):
                if depth > limit:
                    return str(key)
                children = node.values() if isinstance(node, dict) else node
                stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return None


def _check_nesting(value: object, limit: int) -> None:
    where = too_deep(value, limit=limit)
    if where is not None:
        raise JsonTooDeep(where)


def _read_lenient(content: bytes, limit: int) -> ParsedJson:
    """What msgspec refused, read by the standard parser; then made valid, and counted."""
    # Bytes that are not UTF-8 become lone surrogates here, and U+FFFD below, with the
    # parser's lone escapes: one rule, one count.
    text = content.decode("utf-8", errors="surrogateescape")
    try:
        value = json.loads(text, parse_constant=_unheld, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise JsonTooDeep() from None
    except ValueError as error:
        raise NotJson(str(error)) from None
    _check_nesting(value, limit)  # _held recurses: the nesting is bounded first
    changed: Counter[str] = Counter()
    if isinstance(value, dict):
        held: Any = {}
        for key, item in value.items():
            new_key, key_changes = _held(key)
            held[new_key], changes = _held(item)
            if changes + key_changes:
                changed[new_key] += changes + key_changes
    else:
        held, changes = _held(value)
        if changes:
            changed[""] = changes
    return ParsedJson(held, dict(changed))


def _held(value: Any) -> tuple[Any, int]:
    """``value`` with what JSON cannot hold replaced, and how many values were."""
    if value is _UNHELD:
        return None, 1
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value, 0
        return _SURROGATE.sub("\ufffd", value), 1
    if isinstance(value, list):
        pairs = [_held(item) for item in value]
        return [item for item, _ in pairs], sum(n for _, n in pairs)
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        total = 0
        for key, item in value.items():
            new_key, key_changes = _held(key)
            result[new_key], changes = _held(item)
            total += key_changes + changes
        return result, total
    return value, 0


def _unheld(name: str) -> object:
    return _UNHELD  # NaN, Infinity, -Infinity


def _float(text: str) -> object:
    number = float(text)
    return number if math.isfinite(number) else _UNHELD


def _int(text: str) -> object:
    try:
        return int(text)
    except ValueError:  # past Python's 4,300 digits for a conversion from text
        return _UNHELD
