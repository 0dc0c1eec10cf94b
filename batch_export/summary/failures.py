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

from collections.abc import Mapping
from typing import Any

from batch_export.codes import describe, may_resubmit, verdict
from batch_export.text import printable

__all__ = ["code_lines", "failure_notes", "resubmit_counts", "resubmit_text"]

# The per-code lines of the text summary: the most frequent codes, then a count of the rest.
_TEXT_CODES = 10
_CODE_WIDTH = 30
_UNKNOWN = "not a code the provider names; kept as it came"


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
