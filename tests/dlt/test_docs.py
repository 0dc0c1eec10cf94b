"""docs/dlt.md's examples: the pipeline in ten lines runs as written, against the emulator,
and its Airflow and Dagster examples at least compile."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import duckdb
import pytest

from batch_export.dlt import failed_jobs
from batch_export.testing import Emulator
from tests.conftest import CANARY_KEY, user_env
from tests.dlt.conftest import FINISHED
from tests.test_readme_notebook import python_blocks

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

PAGE = Path(__file__).resolve().parents[2] / "docs" / "dlt.md"


def _section(heading: str) -> str:
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match is not None, f"docs/dlt.md has no '## {heading}' section"
    return match.group(1)


def test_the_pipeline_in_ten_lines_runs_as_written(
    account: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (example,) = python_blocks(_section("A pipeline in ten lines"))
    assert len(example.strip().splitlines()) <= 10
    user_env(account, monkeypatch)  # the key and the base URL, as a user sets them
    monkeypatch.chdir(tmp_path)  # dlt's duckdb destination makes scraper_jobs.duckdb here
    namespace: dict[str, Any] = {}
    exec(compile(example, "docs/dlt.md", "exec"), namespace)
    assert failed_jobs(namespace["pipeline"]) == {}
    with duckdb.connect(str(tmp_path / "scraper_jobs.duckdb"), read_only=True) as connection:
        loaded = connection.sql("SELECT job_id FROM scraper.jobs ORDER BY job_id").fetchall()
    assert [job_id for (job_id,) in loaded] == FINISHED
    assert CANARY_KEY  # the suite's leak check greps tmp_path, where dlt kept everything


def test_the_scheduler_examples_compile() -> None:
    blocks = python_blocks(_section("Scheduling"))
    assert len(blocks) == 2
    for block in blocks:
        compile(block, "docs/dlt.md", "exec")
