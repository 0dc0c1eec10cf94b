"""The sync page's examples of reading a synced dataset and Delta tables run as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from batch_export.export import Connection
from batch_export.sync import open_store, sync
from tests.sync.conftest import expected_rows, small_docs
from tests.test_readme_notebook import python_blocks

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

SYNC_PAGE = Path(__file__).resolve().parents[2] / "docs" / "sync.md"


def _example(heading: str) -> str:
    """The one Python block under docs/sync.md's ``## heading``."""
    text = SYNC_PAGE.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(heading)}.*?\n(.*?)(?=^## )", text, re.M | re.S)
    assert match is not None, f"docs/sync.md has no '## {heading}' section"
    blocks = python_blocks(match.group(1))
    assert len(blocks) == 1
    return blocks[0]


def _run(
    heading: str, where: Path, monkeypatch: pytest.MonkeyPatch, **paths: str
) -> dict[str, Any]:
    """Run the example, its absolute ``paths`` (old=new) replaced, from ``where``."""
    source = _example(heading)
    for old, new in paths.items():
        source = source.replace(old, new)
    monkeypatch.chdir(where)  # the examples read warehouse/ and lake/ relative to here
    namespace: dict[str, Any] = {}
    exec(compile(source, f"docs/sync.md, {heading}", "exec"), namespace)
    return namespace


def test_the_dataset_reading_example_runs(
    small: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert sync(tmp_path / "warehouse", connection=small).exit_code == 0
    namespace = _run("Reading it", tmp_path, monkeypatch)
    expected = expected_rows(small_docs())
    assert sorted(namespace["jobs"]["job_id"]) == sorted(expected)
    assert namespace["items"].num_rows == sum(expected.values())


def test_the_delta_example_runs(
    small: Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(tmp_path / "lake", table_format="delta") as store:
        assert sync(store, connection=small).exit_code == 0
    namespace = _run("Delta Lake tables", tmp_path, monkeypatch)
    items = namespace["items"]
    assert isinstance(items, pd.DataFrame) and len(items) > 0  # the account has jobs that day
    assert set(items["date"].astype(str)) == {"2026-05-26"}
    expected = expected_rows(small_docs())
    assert sorted(namespace["jobs"].column("job_id").to_pylist()) == sorted(expected)


def test_the_duckdb_example_runs(
    small: Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    database = tmp_path / "warehouse.duckdb"
    assert sync(f"duckdb:///{database}", connection=small).exit_code == 0
    namespace = _run("DuckDB", tmp_path, monkeypatch, **{"/srv/warehouse.duckdb": str(database)})
    namespace["con"].close()
    shown = capfd.readouterr().out
    assert "completed" in shown  # the status of the account's jobs, counted
