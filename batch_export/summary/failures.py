"""Failure codes for people: what each means, and whether resubmitting its URLs may help.

The facts are the one table of :mod:`batch_export.codes`; this module shapes them for the
summary's text and JSON and for the HTML report, from a summary's ``failure_codes`` (code to
item count, most frequent first). A code the provider does not name is shown as it came,
with an unknown verdict.

Example:

    >>> counts = {"TIMEOUT": 3, "PERMANENT_BLOCK": 1, "teapot": 1}
    >>> resubmit_counts(counts)
    {'may_help': 3, 'will_not_help': 1, 'unknown': 1}
    >>> failure_notes(counts)["teapot"]
    {'meaning': None, 'resubmit': None}
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from batch_export.batches import string_array
from batch_export.codes import describe, may_resubmit, verdict
from batch_export.text import printable, strict_json

__all__ = ["FailureTally", "code_lines", "failure_notes", "resubmit_counts", "resubmit_text"]

# The per-code lines of the text summary: the most frequent codes, then a count of the rest.
_TEXT_CODES = 10
_CODE_WIDTH = 30
_UNKNOWN = "not a code the provider names; kept as it came"
# Built from its buffers: pa.scalar("failed") would make pyarrow import pandas (0.2 s).
_FAILED = string_array(["failed"])[0]


def failure_notes(failure_codes: Mapping[str, int]) -> dict[str, dict[str, Any]]:
    """Each code's ``meaning`` and ``resubmit`` verdict (both None for an unknown code)."""
    notes: dict[str, dict[str, Any]] = {}
    for code in failure_codes:
        entry = describe(code)
        notes[code] = {
            "meaning": entry.meaning if entry else None,
            "resubmit": entry.resubmit if entry else None,
        }
    return notes


def resubmit_counts(failure_codes: Mapping[str, int]) -> dict[str, int]:
    """Items whose code says resubmitting may help, will not help, or is unknown."""
    counts = {"may_help": 0, "will_not_help": 0, "unknown": 0}
    for code, items in failure_codes.items():
        resubmit = may_resubmit(code)
        key = "unknown" if resubmit is None else "may_help" if resubmit else "will_not_help"
        counts[key] += items
    return counts


def code_lines(failure_codes: Mapping[str, int]) -> list[str]:
    """One line per code, most frequent first: the code, its verdict and its meaning.

    A code is the API's text: its control characters are shown escaped, aligned as shown.

    >>> for line in code_lines({"RATE_LIMITED": 2, "odd": 1}): print(line)
    RATE_LIMITED  resubmit  the target or the API limited the request rate
    odd           unknown   not a code the provider names; kept as it came
    """
    codes = list(failure_codes)[:_TEXT_CODES]
    if not codes:
        return []
    shown = [printable(code) for code in codes]
    width = min(max(map(len, shown)), _CODE_WIDTH)
    lines = []
    for code, text in zip(codes, shown, strict=True):
        entry = describe(code)
        meaning = entry.meaning if entry else _UNKNOWN
        lines.append(f"{text:<{width}}  {verdict(code):<8}  {meaning}")
    if len(failure_codes) > _TEXT_CODES:
        lines.append(f"... and {len(failure_codes) - _TEXT_CODES} more codes")
    return lines


def resubmit_text(failure_codes: Mapping[str, int]) -> str:
    """How many items' codes say resubmitting may help, will not help, or do not say.

    >>> resubmit_text({"RATE_LIMITED": 2, "AUTH_REQUIRED": 1, "odd": 1})
    'may help for 2 items, will not for 1, unknown for 1'
    """
    counts = resubmit_counts(failure_codes)
    return (
        f"may help for {counts['may_help']} items, will not for {counts['will_not_help']}, "
        f"unknown for {counts['unknown']}"
    )


class FailureTally:
    """The failure codes of a job's failed items, counted from the batches that go by, for a
    jobs table: two pyarrow calls a batch, where a whole summary costs a dozen.

    >>> from batch_export.schema import ITEM_SCHEMA
    >>> rows = [{"input_index": 0, "status": "failed", "error_code": "TIMEOUT"},
    ...         {"input_index": 1, "status": "failed", "error_code": "odd"},
    ...         {"input_index": 2, "status": "completed"}]
    >>> tally = FailureTally()
    >>> tally.add(pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA))
    >>> tally.columns()["failed_retryable"], tally.columns()["failure_codes"]
    (1, '{"TIMEOUT":{"items":1,"resubmit":true},"odd":{"items":1,"resubmit":null}}')
    """

    def __init__(self) -> None:
        self.codes: Counter[str] = Counter()

    def add(self, batch: pa.RecordBatch) -> None:
        """Count the ``error_code`` of the batch's failed items (a null code is not counted)."""
        codes = pc.filter(batch.column("error_code"), pc.equal(batch.column("status"), _FAILED))
        for entry in pc.value_counts(codes.drop_null()).to_pylist():
            self.codes[str(entry["values"])] += entry["counts"]

    def columns(self) -> dict[str, Any]:
        """``failure_codes``: strict JSON text, each code (most frequent first) with its items
        and whether resubmitting may help (null: unknown), or None when no item failed with a
        code; ``failed_retryable``: the failed items whose code says resubmitting may help."""
        counts = dict(self.codes.most_common())
        notes = {
            code: {"items": items, "resubmit": may_resubmit(code)} for code, items in counts.items()
        }
        return {
            "failure_codes": strict_json(notes) if notes else None,
            "failed_retryable": resubmit_counts(counts)["may_help"],
        }
