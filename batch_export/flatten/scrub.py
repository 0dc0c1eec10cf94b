"""The API key hidden in the items: every text column of every batch, on the one road.

A server that echoes the key into an item (an ``error_code``, a markdown body, a link, an
unknown field kept in ``extra``) would have it written to every file and store. The pipeline
passes each batch through a :class:`BatchScrub` once, before anything counts or writes it:
every run of 8 or more consecutive characters of the key becomes ``<hidden>``, and the runs
are counted (:attr:`BatchScrub.hidden`).

The rule comes as :class:`KeyPatterns` (made by :func:`batch_export.fetch.secret.key_patterns`
and handed in by the pipeline: this stage imports nothing of the fetch stage). Looking costs
little where the key is not, which is nearly always:

1. A column's characters are read as 4-byte words, from its first byte. A run of 8 key
   characters covers one such word whole, and that word is one of the key's 4-character
   pieces (``quads``): numpy looks the words up, the half-words first (a table of 65,536
   flags), the few words that pass among the pieces then. No hit: no run, the column is
   left as it is. This costs about a third of an RE2 pass (measured on 2 KB markdown items).
2. A hit (a key piece of 4 characters, which English words can be) is checked with RE2
   (``pieces``), over the column's bytes as one value; only then is each value counted and
   rewritten (``runs``, ``marker``).

``job_id`` is left alone: it is the id that was asked for. :meth:`BatchScrub.over` does the
looking in a thread of its own while the next batch is read (RE2 and numpy let go of the GIL).

Example:

    >>> import pyarrow as pa
    >>> from batch_export.fetch.secret import key_patterns
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> rows = [{"input_index": 0, "markdown": "key canary-7f3a9c1e-never here"},
    ...         {"input_index": 1, "links": ["https://a.test/?k=canary-7f3a9c1e"]}]
    >>> scrub = BatchScrub(key_patterns("canary-7f3a9c1e-never-print-me"))
    >>> batch = scrub(pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA))
    >>> batch.column("markdown")[0].as_py(), batch.column("links")[1].as_py(), scrub.hidden
    ('key <hidden> here', ['https://a.test/?k=<hidden>'], 2)
"""

from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["BatchScrub", "KeyPatterns"]

# Columns of ours, not the server's: the job id is the one the caller asked for.
_OURS = frozenset({"job_id"})
# Little-endian on every machine: the words and the key's pieces must be read alike.
_WORD, _HALF = np.dtype("<u4"), np.dtype("<u2")


class KeyPatterns(Protocol):
    """What :class:`BatchScrub` needs of the key's rule (see ``fetch.secret.KeyPatterns``)."""

    @property
    def quads(self) -> Sequence[str]: ...

    @property
    def pieces(self) -> str: ...

    @property
    def runs(self) -> str: ...

    @property
    def marker(self) -> str: ...


class BatchScrub:
    """Hides the key's runs in record batches and counts them; without patterns, a no-op."""

    def __init__(self, patterns: KeyPatterns | None) -> None:
        self._patterns = patterns
        self._quads = None if patterns is None else _quads_of(tuple(patterns.quads))
        self.hidden = 0

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` with the key hidden in its text columns (the same batch when clean)."""
        if self._patterns is None or batch.num_rows == 0:
            return batch
        columns = list(batch.columns)
        changed = False
        for position, column in enumerate(columns):
            if batch.schema.names[position] in _OURS:
                continue
            scrubbed = self._column(column)
            if scrubbed is not column:
                columns[position], changed = scrubbed, True
        return pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch

    def over(self, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        """``batches`` scrubbed, in order: each in a thread of its own while the next is read.

        The looking overlaps the reading of the next batch and the caller's work on the one
        before, where a core is free. One batch is held ahead.
        """
        source = iter(batches)
        first = next(source, None)
        if first is None or self._patterns is None:
            yield from () if first is None else itertools.chain([first], source)
            return
        second = next(source, None)
        if second is None:  # a job of one batch (most of a sync's) costs no thread
            yield self(first)
            return
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="key-scrub") as pool:
            ahead = pool.submit(self, first)
            for batch in itertools.chain([second], source):
                scrubbed = ahead.result()
                ahead = pool.submit(self, batch)
                yield scrubbed
            yield ahead.result()

    def _column(self, column: pa.Array) -> pa.Array:
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            return self._text(column)
        if pa.types.is_list(kind) and pa.types.is_string(kind.value_type):
            values = pc.list_flatten(column)
            scrubbed = self._text(values)
            if scrubbed is values:
                return column
            # Offsets from 0, as the flattened values: a slice's offsets cannot take a mask.
            offsets = pc.subtract(column.offsets, column.offsets[0])
            mask = column.is_null() if column.null_count else None
            return pa.ListArray.from_arrays(offsets, scrubbed, type=kind, mask=mask)
        return column

    def _text(self, column: pa.Array) -> pa.Array:
        assert self._patterns is not None and self._quads is not None
        characters = _characters(column)
        if characters is None or not self._quads.maybe_in(characters):
            return column
        whole = pa.Array.from_buffers(
            pa.large_binary(),
            1,
            [None, pa.py_buffer(struct.pack("<qq", 0, characters.size)), characters],
        )
        if not pc.match_substring_regex(whole, self._patterns.pieces)[0].as_py():
            return column
        runs = self._patterns.runs
        found = pc.sum(pc.count_substring_regex(column, runs)).as_py() or 0
        if not found:  # the run went from one value into the next: no value holds it
            return column
        self.hidden += found
        return pc.replace_substring_regex(column, runs, self._patterns.marker)


class _Quads:
    """The key's 4-character pieces, to look words of text up in (see the module's 1.)."""

    def __init__(self, quads: Sequence[str]) -> None:
        self.words = np.unique(np.frombuffer("".join(quads).encode("ascii"), dtype=_WORD))
        self.halves = np.zeros(1 << 16, dtype=np.bool_)
        self.halves[self.words >> 16] = True

    def maybe_in(self, characters: pa.Buffer) -> bool:
        """False when ``characters`` hold no 8 characters of the key in a row."""
        words: np.ndarray[Any, np.dtype[np.uint32]] = np.frombuffer(
            characters, dtype=_WORD, count=characters.size // 4
        )
        upper = words.view(_HALF)[1::2]  # the high half of each little-endian word
        passed = np.flatnonzero(self.halves[upper])
        return bool(passed.size) and bool(np.isin(words[passed], self.words).any())


@functools.lru_cache(maxsize=4)
def _quads_of(quads: tuple[str, ...]) -> _Quads:
    # Made once per key, not once per job: a sync loads thousands of small jobs.
    return _Quads(quads)


def _characters(column: pa.Array) -> pa.Buffer | None:
    """The bytes of a string column's values, end to end (no copy); None when none."""
    _, offsets, data = column.buffers()
    if data is None or offsets is None or len(column) == 0:
        return None
    form = "<q" if pa.types.is_large_string(column.type) else "<i"
    width = struct.calcsize(form)
    (start,) = struct.unpack_from(form, offsets, column.offset * width)
    (end,) = struct.unpack_from(form, offsets, (column.offset + len(column)) * width)
    return None if end == start else data.slice(start, end - start)
