"""Values a destination cannot hold, changed by one documented rule and counted.

PostgreSQL's ``text`` cannot hold the character NUL (U+0000), and its ``jsonb`` refuses the
escape ``\\u0000`` and a lone surrogate escape (``\\ud800`` without its pair). Scraped text
holds such characters now and then, and one of them would keep its job out of the database on
every run. The rule, for every text value (a cell, each link, each JSON document, keys and
values alike):

- NUL becomes U+FFFD (the replacement character), in plain text and as the JSON escape
  ``\\u0000``;
- in JSON text, a surrogate escape without its pair becomes ``\\ufffd``;

and each value so changed counts once in the job's ``values_changed``. The other
destinations (Parquet, Delta Lake, DuckDB) hold every value as it came.

Example:

    >>> import pyarrow as pa
    >>> extra = ['{"k\\\\u0000": 1}', None]
    >>> batch = pa.record_batch({"markdown": ["a\\x00b", "ok"], "extra": extra})
    >>> held, changed = held_values(batch, json_columns={"extra"})
    >>> held.column("markdown").to_pylist(), held.column("extra").to_pylist(), changed
    (['a\\ufffdb', 'ok'], ['{"k\\\\ufffd": 1}', None], 2)
"""

from __future__ import annotations

import re
from collections.abc import Collection

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["REPLACEMENT", "HeldValues", "held_json_text", "held_values"]

REPLACEMENT = "\ufffd"
# Each escape of JSON text in turn, so that the `\u` of `\\u0000` (a backslash, then the
# text "u0000") is never read as an escape.
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)
# What may need a change: a NUL or surrogate escape (RE2, for the fast look over a column).
_SUSPECT = r"\\u(?:0000|[dD][89abAB][0-9a-fA-F]{2})"


def held_json_text(text: str) -> str:
    """``text`` (JSON) with NUL escapes and lone surrogate escapes made ``\\ufffd``.

    >>> held_json_text('"\\\\ud83d\\\\ude00 \\\\ud800 \\\\\\\\u0000 \\\\u0000"')
    '"\\\\ud83d\\\\ude00 \\\\ufffd \\\\\\\\u0000 \\\\ufffd"'
    """
    escapes = [m for m in _ESCAPE.finditer(text) if m.group(1) is not None]
    spans: list[tuple[int, int]] = []
    paired = False
    for number, escape in enumerate(escapes):
        if paired:  # the low half of a pair kept just before
            paired = False
            continue
        code = int(escape.group(1), 16)
        if 0xD800 <= code <= 0xDBFF and number + 1 < len(escapes):
            low = escapes[number + 1]
            if low.start() == escape.end() and 0xDC00 <= int(low.group(1), 16) <= 0xDFFF:
                paired = True
                continue
        if code == 0 or 0xD800 <= code <= 0xDFFF:
            spans.append(escape.span())
    for start, end in reversed(spans):
        text = text[:start] + "\\ufffd" + text[end:]
    return text.replace("\x00", REPLACEMENT)


def held_values(
    batch: pa.RecordBatch | pa.Table, *, json_columns: Collection[str] = ()
) -> tuple[pa.RecordBatch | pa.Table, int]:
    """``batch`` with the rule above applied to its text columns; and how many values changed.

    Columns named in ``json_columns`` hold JSON text. A batch with nothing to change is
    returned as it is.
    """
    changed = 0
    columns = list(batch.columns)
    for index, field in enumerate(batch.schema):
        column = columns[index]
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        held, count = _held_column(column, json=field.name in json_columns)
        if count:
            columns[index] = held
            changed += count
    if not changed:
        return batch, 0
    kind = pa.Table if isinstance(batch, pa.Table) else pa.RecordBatch
    return kind.from_arrays(columns, schema=batch.schema), changed


def _held_column(array: pa.Array, *, json: bool) -> tuple[pa.Array, int]:
    kind = array.type
    if pa.types.is_list(kind) and _is_text(kind.value_type):
        values, count = _held_column(array.values, json=json)
        if not count:
            return array, 0
        rebuilt = pa.ListArray.from_arrays(array.offsets, values, mask=array.is_null())
        return rebuilt.cast(kind), count
    if not _is_text(kind):
        return array, 0
    nul = pc.match_substring(array, "\x00")
    suspect = pc.or_(nul, pc.match_substring_regex(array, _SUSPECT)) if json else nul
    count = pc.sum(suspect).as_py() or 0
    if not count:
        return array, 0
    if not json:
        return pc.replace_substring(array, "\x00", REPLACEMENT), count
    texts = array.to_pylist()
    marked = suspect.to_pylist()
    held = [
        held_json_text(text) if mark else text for text, mark in zip(texts, marked, strict=True)
    ]
    changed = sum(new != old for new, old in zip(held, texts, strict=True))
    return pa.array(held, kind), changed


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


class HeldValues:
    """The rule applied to a job's batches one by one (a spool's transform), counting.

    >>> rule = HeldValues(json_columns=())
    >>> rule(pa.record_batch({"url": ["a\\x00", "b\\x00"]})).column(0).to_pylist(), rule.changed
    (['a\\ufffd', 'b\\ufffd'], 2)
    """

    def __init__(self, *, json_columns: Collection[str]) -> None:
        self.json_columns = json_columns
        self.changed = 0

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        held, changed = held_values(batch, json_columns=self.json_columns)
        self.changed += changed
        assert isinstance(held, pa.RecordBatch)
        return held
