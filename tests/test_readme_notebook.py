"""The README's "In a notebook" section runs as written, against the emulator."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import batch_export
from batch_export.summary.counts import Summary
from batch_export.testing import Emulator
from tests.conftest import SMALL_JOB

README = Path(__file__).resolve().parent.parent / "README.md"


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, re.M | re.S)
    assert match is not None, f"README has no '## {title}' section"
    return match.group(1)


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, re.M | re.S)


def test_the_section_shows_code() -> None:
    blocks = python_blocks(section("In a notebook"))
    assert len(blocks) >= 3
    assert all(SMALL_JOB in block for block in (blocks[0], blocks[-1]))


def test_the_sections_code_runs(
    api_env: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the code writes report.html and items.parquet here
    namespace: dict[str, Any] = {}
    for number, block in enumerate(python_blocks(section("In a notebook")), start=1):
        exec(compile(block, f"README.md, In a notebook, block {number}", "exec"), namespace)
    df, summary = namespace["df"], namespace["summary"]
    assert len(df) == 25 and len(namespace["failed"]) == 5
    assert isinstance(summary, Summary) and summary.job_status == "completed"
    assert summary.frames.failure_codes["items"].sum() == 5
    pd.testing.assert_frame_equal(namespace["back"], df)
    assert namespace["back"].attrs == df.attrs
    assert "<svg" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_every_function_in_the_table_is_public() -> None:
    table = section("In a notebook").split("| function | returns |", 1)[1]
    names = re.findall(r"^\| `(\w+)\(|, `(\w+)\(", table, re.M)
    named = {name for pair in names for name in pair if name}
    assert named == {
        "read_job", "read_jobs", "iter_batches", "export", "read_export", "summarize",
        "render_report", "write_report", "scrape",
    }  # fmt: skip
    assert named <= set(batch_export.__all__)
