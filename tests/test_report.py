"""The HTML report: hostile text stays text, the page needs nothing from outside, and a real
browser shows the charts and runs no script from the data."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.errors import OutputError
from batch_export.export import export
from batch_export.summary.counts import Summary
from batch_export.summary.report import render_fragment, render_report, write_report
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

TITLE = "batch-export report: job hostile"
PAYLOADS = {
    "script": "<script>document.title='pwned'</script> \"quoted\" & 'single'",
    "img": "<img src=x onerror=\"document.title='pwned'\">",
    "url": 'https://e.test/?q=<script>alert(1)</script>&a="b"',
    "code": '"><svg onload="document.title=\'pwned\'">',
    "invalid": "javascript:document.title='pwned'",
}
# Every element the report may contain: no script, no link, no image, no frame, no form.
ALLOWED_TAGS = {
    "html", "head", "meta", "title", "body", "div", "style", "h2", "h3", "p", "code", "b",
    "svg", "g", "text", "rect", "line", "table", "tbody", "tr", "th", "td", "ul", "li",
}  # fmt: skip
COLOURS = {"failure bars": (207, 34, 46), "histogram": (130, 80, 223), "tokens": (47, 129, 247)}


def hostile_job() -> dict[str, Any]:
    """A job whose scraped text tries to run script in whoever opens the report."""
    doc = generate_job(job_id="hostile", items=40, failure_rate=0.5, seed=2)
    failed = [item for item in doc["results"] if item["status"] == "failed"]
    for position, item in enumerate(failed):
        item["error_message"] = PAYLOADS["img"] if position % 2 else PAYLOADS["script"]
        item["url"] = PAYLOADS["url"] + str(position)
    failed[0]["error_code"] = PAYLOADS["code"]
    doc["invalid_urls"] = [PAYLOADS["invalid"]]
    return doc


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the hostile job, written by `export --report` through the library."""
    folder = tmp_path_factory.mktemp("report")
    with Emulator(jobs=[hostile_job()], api_key=CANARY_KEY) as emulator:
        export("hostile", folder / "items.jsonl", base_url=emulator.base_url, api_key=CANARY_KEY,
               report_path=folder / "report.html")  # fmt: skip
    return folder / "report.html"


class Elements(HTMLParser):
    """Every start tag of a page, with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(page)
    return parser.found


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_hostile_text_is_escaped(report: Path, payload: str) -> None:
    page = report.read_text(encoding="utf-8")
    text = PAYLOADS[payload]
    assert text not in page
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    escaped = escaped.replace('"', "&quot;").replace("'", "&#x27;")
    assert escaped in page


def test_the_page_has_no_script_link_or_outside_asset(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    found = elements(page)
    assert {tag for tag, _ in found} <= ALLOWED_TAGS
    assert [name for _, attrs in found for name in attrs if name.startswith("on")] == []
    assert [name for _, attrs in found for name in attrs if name in ("src", "href")] == []
    assert "<script" not in page.lower()
    assert "default-src 'none'" in page  # the browser would refuse any script anyway


def test_the_page_holds_the_figures(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    svgs = [attrs for tag, attrs in elements(page) if tag == "svg"]
    assert [attrs["aria-label"] for attrs in svgs] == [
        "Tokens charged versus reserved",
        "Items per failure code",
        "Items per duration_ms bin, by its lower edge",
    ]
    assert "<b>40</b>rows" in page and "<b>20</b>failed" in page
    assert "Failed URLs (20)" in page
    assert "Invalid URLs, rejected at submission (1)" in page


def test_the_notebook_view_is_the_compact_fragment() -> None:
    summary = Summary(job_id="j1", rows=3, failed_urls=["https://a.test/"],
                      failure_codes={"http_403": 1}, by_status={"failed": 1})  # fmt: skip
    fragment = summary._repr_html_()
    assert fragment == render_fragment(summary)
    assert fragment.startswith("<div class='bx-report'>") and "<html" not in fragment
    assert "https://a.test/" not in fragment  # the URL lists are for the file only
    assert "https://a.test/" in render_report(summary)


def test_write_report_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        write_report(Summary(job_id="j1"), tmp_path / "no" / "report.html")


def test_cli_report_of_an_export_file(report: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["report", str(report.parent / "items.jsonl"), "-o", str(tmp_path / "r.html")]
    )
    assert result.exit_code == 0, result.output
    assert result.output.endswith(f"Report written to {tmp_path / 'r.html'}\n")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<b>40</b>rows" in page and PAYLOADS["script"] not in page


def test_cli_report_of_a_missing_file_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path / "x.csv"), "-o", "r.html"])
    assert result.exit_code == 2
    assert f"There is no export file at {tmp_path / 'x.csv'}." in result.output


def test_cli_export_writes_the_report(tmp_path: Path) -> None:
    with Emulator(jobs=[hostile_job()], api_key=CANARY_KEY) as emulator:
        result = CliRunner().invoke(
            main,
            ["export", "hostile", "-o", str(tmp_path / "o.csv"), "--report",
             str(tmp_path / "r.html"), "--base-url", emulator.base_url, "--quiet"],
            env={"GEONODE_SCRAPER_API_KEY": CANARY_KEY},
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert f"<title>{TITLE}</title>" in (tmp_path / "r.html").read_text(encoding="utf-8")


# --- in a real browser ------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser() -> Iterator[Any]:
    """Run headless chromium on a file with a throwaway profile; returns its stdout.

    A missing chromium fails the test with the install hint (`make browser` installs it as
    root, as CI runs): a skipped browser test would pass unchecked.
    """
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: run `make browser` (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:

        def run(page: Path, *options: str) -> str:
            command = [
                str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                *options, page.as_uri(),
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
            return done.stdout

        yield run


@pytest.mark.parametrize(
    ("variant", "pwned"),
    [
        ("the report", False),
        ("the report without its CSP", False),  # escaping alone must hold
        ("a page with the raw payload", True),  # shows that the check can see a script run
    ],
)
def test_no_script_from_the_data_runs(
    report: Path, tmp_path: Path, browser: Any, variant: str, pwned: bool
) -> None:
    page = report.read_text(encoding="utf-8")
    if variant != "the report":
        page = re.sub(r"<meta http-equiv='Content-Security-Policy'[^>]*>", "", page)
    if pwned:
        page = page.replace("</body>", PAYLOADS["script"] + "</body>")
    (tmp_path / "page.html").write_text(page, encoding="utf-8")
    dom = browser(tmp_path / "page.html", "--dump-dom")
    title = re.search(r"<title>(.*?)</title>", dom, re.S)
    assert title is not None
    assert (title.group(1) == "pwned") is pwned
    if not pwned:
        assert title.group(1) == TITLE
        found = elements(dom)  # the document as the browser built it
        assert {tag for tag, _ in found} <= ALLOWED_TAGS
        assert [name for _, attrs in found for name in attrs if name.startswith("on")] == []


def test_the_browser_draws_the_charts(report: Path, tmp_path: Path, browser: Any) -> None:
    from PIL import Image

    browser(report, f"--screenshot={tmp_path / 'shot.png'}", "--window-size=1000,1400")
    with Image.open(tmp_path / "shot.png") as shot:
        colours = shot.convert("RGB").getcolors(maxcolors=1 << 20) or []
    painted = {rgb: count for count, rgb in colours}
    for chart, rgb in COLOURS.items():
        assert painted.get(rgb, 0) > 2000, f"the {chart} are not drawn"
