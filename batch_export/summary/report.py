"""The HTML report of a summary: one self-contained file, or a notebook's rich display.

The report shows what a person wants to see of a job: counts, tokens charged versus
reserved, a bar chart of failure codes and a histogram of durations. The charts are inline
SVG, so the file needs no plotting library, no network and no script: it opens offline, and
its Content-Security-Policy forbids scripts outright.

URLs and error messages are the scraped world's text, so attacker-controlled: every value
from the summary passes through :func:`html.escape` (quotes included) before it reaches the
page, and none becomes a link.

Example:

    >>> from batch_export.summary.counts import Summary
    >>> page = render_report(Summary(job_id="j1", rows=2, failure_codes={"<b>": 1}))
    >>> "&lt;b&gt;" in page, "<script" in page
    (True, False)
"""

from __future__ import annotations

import html
import os
from typing import Any, Protocol

from batch_export.atomic import write_bytes
from batch_export.codes import verdict
from batch_export.summary.failures import failure_notes, resubmit_text
from batch_export.text import figure

__all__ = ["SummaryFigures", "render_fragment", "render_report", "write_report"]


class SummaryFigures(Protocol):
    """What the report draws: anything whose ``to_dict()`` is a summary's JSON form.

    :class:`~batch_export.summary.counts.Summary` is one; the report reads its JSON form
    rather than the class, so that the summary can show itself as a report in a notebook
    without the two modules importing each other.
    """

    def to_dict(self) -> dict[str, Any]:
        """The summary as the ``--summary`` file holds it."""


_CHART_WIDTH = 640
_LABEL_WIDTH = 210
_ROW_HEIGHT = 24
_MAX_BARS = 15
_LIST_LIMIT = 20
_TEXT_LIMIT = 200
_STATUS_CARDS = ("completed", "failed", "cancelled", "pending")
_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_STYLE = """
.bx-report{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;
 max-width:760px}
.bx-report h2{font-size:20px;margin:.2em 0}.bx-report h3{font-size:15px;margin:1.2em 0 .3em}
.bx-report .bx-sub{color:#59636e;margin:0 0 .8em}
.bx-report .bx-cards{display:flex;flex-wrap:wrap;gap:8px}
.bx-report .bx-card{border:1px solid #d1d9e0;border-radius:6px;padding:6px 12px;min-width:84px}
.bx-report .bx-card b{display:block;font-size:20px}
.bx-report table{border-collapse:collapse}.bx-report td,.bx-report th{text-align:left;
 padding:2px 10px 2px 0;vertical-align:top}
.bx-report .bx-num{text-align:right;font-variant-numeric:tabular-nums}
.bx-report .bx-long{word-break:break-all;font-family:ui-monospace,monospace;font-size:12px}
.bx-report svg text{font:12px system-ui,sans-serif;fill:#1f2328}
"""


def render_report(summary: SummaryFigures) -> str:
    """The whole report as one self-contained HTML document (no script, no external asset).

    >>> from batch_export.summary.counts import Summary
    >>> render_report(Summary(job_id="j1")).startswith("<!DOCTYPE html>")
    True
    """
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>batch-export report: job {_e(summary.to_dict()['job_id'])}</title></head>\n"
        f"<body>\n{render_fragment(summary, compact=False)}\n</body></html>\n"
    )


def render_fragment(summary: SummaryFigures, *, compact: bool = True) -> str:
    """The report as one ``<div>``, for a notebook; ``compact`` leaves out the URL lists.

    >>> from batch_export.summary.counts import Summary
    >>> render_fragment(Summary(job_id="j1")).startswith("<div class='bx-report'>")
    True
    """
    facts = summary.to_dict()
    parts = [
        "<div class='bx-report'>",
        f"<style>{_STYLE}</style>",
        _headline(facts),
        _cards(facts),
        "<h3>Tokens</h3>",
        _tokens(facts),
        _failures(facts),
        _durations(facts),
        _http(facts),
    ]
    if not compact:
        # The charts first; what each code means, and an example of each, below them.
        parts.append(_failure_details(facts))
        parts.append(_url_list("Failed URLs", facts["failed_urls"]))
        parts.append(_url_list("Invalid URLs, rejected at submission", facts["invalid_urls"]))
    parts.append("</div>")
    return "\n".join(part for part in parts if part)


def write_report(summary: SummaryFigures, path: str | os.PathLike[str]) -> None:
    """Write :func:`render_report` to ``path``; the file appears only when complete.

    >>> import tempfile, pathlib
    >>> from batch_export.summary.counts import Summary
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "report.html"
    >>> write_report(Summary(job_id="j1", rows=0), out)
    >>> "<title>batch-export report: job j1</title>" in out.read_text(encoding="utf-8")
    True
    """
    write_bytes(path, render_report(summary).encode("utf-8"))


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _short(text: str, limit: int = _TEXT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _headline(facts: dict[str, Any]) -> str:
    said = [f"{figure(facts['rows'])} rows"]
    output = facts["output"]
    if output.get("path"):
        said.append(f"written to {_e(output['path'])} ({_e(output.get('format'))})")
    for key, label in (("created_at", "created"), ("completed_at", "completed")):
        if facts["job"].get(key):
            said.append(f"{label} {_e(facts['job'][key])}")
    if facts.get("api_key_hidden"):
        said.append(f"{figure(facts['api_key_hidden'])} runs of the API key written &lt;hidden&gt;")
    status = _e(facts["job_status"] or "status unknown")
    return (
        f"<h2>Job <code>{_e(facts['job_id'])}</code>: {status}</h2>"
        f"<p class='bx-sub'>{' · '.join(said)}</p>"
    )


def _cards(facts: dict[str, Any]) -> str:
    counts = {status: facts["by_status"].get(status, 0) for status in _STATUS_CARDS}
    # Statuses the API may add later are shown too, never folded into another.
    counts |= {status: n for status, n in facts["by_status"].items() if status not in counts}
    cards = [("rows", facts["rows"]), *counts.items(), ("invalid URLs", len(facts["invalid_urls"]))]
    shown = "".join(
        f"<div class='bx-card'><b>{figure(n)}</b>{_e(label)}</div>" for label, n in cards
    )
    return f"<div class='bx-cards'>{shown}</div>"


def _tokens(facts: dict[str, Any]) -> str:
    tokens = facts["tokens"]
    rows = [
        ("charged (job total)", tokens.get("charged_total")),
        ("charged (sum of items)", tokens.get("charged_items")),
        ("reserved", tokens.get("reserved")),
    ]
    total, items = tokens.get("charged_total"), tokens.get("charged_items")
    note = ""
    if total is not None and total != items:
        note = "<p>The job's total differs from the sum over its items.</p>"
    return _bar_chart(rows, title="Tokens charged versus reserved", colour="#2f81f7") + note


def _failures(facts: dict[str, Any]) -> str:
    if not facts["failure_codes"]:
        return "<h3>Failure codes</h3><p>No item failed.</p>"
    codes = list(facts["failure_codes"].items())
    rows: list[tuple[str, int | None]] = list(codes[:_MAX_BARS])
    if len(codes) > _MAX_BARS:
        rest = codes[_MAX_BARS:]
        rows.append((f"{len(rest)} other codes", sum(n for _, n in rest)))
    chart = _bar_chart(rows, title="Items per failure code", colour="#cf222e")
    heading = f"<h3>Failure codes ({figure(facts['by_status'].get('failed', 0))} failed items)</h3>"
    resubmit = f"<p>Resubmitting {_e(resubmit_text(facts['failure_codes']))}.</p>"
    return heading + chart + resubmit


def _failure_details(facts: dict[str, Any]) -> str:
    if not facts["failure_codes"]:
        return ""
    return "<h3>Failure codes: what they mean</h3>" + _meanings(facts) + _examples(facts)


def _meanings(facts: dict[str, Any]) -> str:
    """Each code's verdict and meaning, from the one table of codes."""
    lines = ["<table><tr><th>error_code</th><th>items</th><th>resubmit?</th><th>meaning</th></tr>"]
    for code, note in list(failure_notes(facts["failure_codes"]).items())[: _MAX_BARS * 2]:
        meaning = note["meaning"] or "not a code the provider names; kept as it came"
        lines.append(
            f"<tr><td><code>{_e(_short(code, 60))}</code></td>"
            f"<td class='bx-num'>{figure(facts['failure_codes'][code])}</td>"
            f"<td>{_e(verdict(code))}</td><td>{_e(meaning)}</td></tr>"
        )
    return "".join(lines) + "</table>"


def _examples(facts: dict[str, Any]) -> str:
    lines = ["<table><tr><th>error_code</th><th>first URL</th><th>its error_message</th></tr>"]
    for code in list(facts["failure_codes"])[: _MAX_BARS * 2]:
        example = facts["failure_examples"].get(code, {})
        url, message = example.get("url") or "", example.get("error_message") or ""
        lines.append(
            f"<tr><td><code>{_e(_short(code, 60))}</code></td>"
            f"<td class='bx-long'>{_e(_short(url))}</td><td>{_e(_short(message))}</td></tr>"
        )
    return "".join(lines) + "</table>"


def _durations(facts: dict[str, Any]) -> str:
    d = facts["duration_ms"]
    figures = ""
    if d.get("max") is not None:
        figures = (
            f"<p>p50 {figure(d.get('p50'))} ms · p95 {figure(d.get('p95'))} ms · "
            f"max {figure(d.get('max'))} ms</p>"
        )
    edges = facts["duration_histogram"].get("edges_ms", [])
    counts = facts["duration_histogram"].get("counts", [])
    return "<h3>Durations</h3>" + _histogram(edges, counts) + figures


def _http(facts: dict[str, Any]) -> str:
    if not facts["http_status"]:
        return ""
    rows = "".join(
        f"<tr><td>{_e(status)}</td><td class='bx-num'>{figure(n)}</td></tr>"
        for status, n in facts["http_status"].items()
    )
    return f"<h3>Target HTTP status</h3><table><tr><th>status</th><th>items</th></tr>{rows}</table>"


def _url_list(title: str, urls: list[str]) -> str:
    if not urls:
        return ""
    shown = "".join(f"<li>{_e(_short(url))}</li>" for url in urls[:_LIST_LIMIT])
    more = (
        f"<p>... and {figure(len(urls) - _LIST_LIMIT)} more.</p>" if len(urls) > _LIST_LIMIT else ""
    )
    return f"<h3>{_e(title)} ({figure(len(urls))})</h3><ul class='bx-long'>{shown}</ul>{more}"


def _bar_chart(rows: list[tuple[str, int | None]], *, title: str, colour: str) -> str:
    """Horizontal bars, one per (label, value); a None value is drawn as '?' with no bar."""
    top = max([value or 0 for _, value in rows] + [1])
    room = _CHART_WIDTH - _LABEL_WIDTH - 70
    height = _ROW_HEIGHT * len(rows) + 4
    marks = []
    for row, (label, value) in enumerate(rows):
        y = row * _ROW_HEIGHT + 2
        width = round(room * (value or 0) / top)
        marks.append(
            f"<g><title>{_e(label)}: {figure(value)}</title>"
            f"<text x='{_LABEL_WIDTH - 8}' y='{y + 16}' text-anchor='end'>"
            f"{_e(_short(label, 28))}</text>"
            f"<rect x='{_LABEL_WIDTH}' y='{y + 3}' width='{width}' height='{_ROW_HEIGHT - 6}' "
            f"fill='{colour}'/>"
            f"<text x='{_LABEL_WIDTH + width + 6}' y='{y + 16}'>{figure(value)}</text></g>"
        )
    return _svg(title, height, "".join(marks))


def _histogram(edges: list[int], counts: list[int]) -> str:
    """Vertical bars over fixed duration bins, each labelled by its lower edge."""
    if not counts:
        return "<p>No durations.</p>"
    top, height, base, left = max([*counts, 1]), 182, 160, 8
    step = (_CHART_WIDTH - left) / len(counts)
    marks = []
    for position, (edge, count) in enumerate(zip(edges, counts, strict=True)):
        middle = left + position * step + step / 2
        bar = round((base - 20) * count / top)
        upper = edges[position + 1] if position + 1 < len(edges) else None
        span = f"{_ms(edge)} to {_ms(upper)}" if upper is not None else f"{_ms(edge)} and up"
        above = (
            f"<text x='{middle:.1f}' y='{base - bar - 4}' text-anchor='middle'>"
            f"{figure(count)}</text>"
        )
        marks.append(
            f"<g><title>{_e(span)}: {figure(count)} items</title>"
            f"<rect x='{middle - step / 2 + 2:.1f}' y='{base - bar}' width='{step - 4:.1f}' "
            f"height='{bar}' fill='#8250df'/>"
            f"<text x='{middle:.1f}' y='{base + 16}' text-anchor='middle'>{_e(_ms(edge))}</text>"
            f"{above if count else ''}</g>"
        )
    axis = f"<line x1='{left}' y1='{base}' x2='{_CHART_WIDTH}' y2='{base}' stroke='#59636e'/>"
    return _svg("Items per duration_ms bin, by its lower edge", height, "".join(marks) + axis)


def _ms(edge: int) -> str:
    return f"{edge // 1000}s" if edge >= 1000 else f"{edge}ms"


def _svg(title: str, height: int, body: str) -> str:
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' role='img' width='{_CHART_WIDTH}' "
        f"height='{height}' viewBox='0 0 {_CHART_WIDTH} {height}' aria-label='{_e(title)}'>"
        f"<title>{_e(title)}</title>{body}</svg>"
    )
