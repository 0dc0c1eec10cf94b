"""The examples run as plain scripts, as a newcomer would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "examples" / "notebook.py"


def test_the_notebook_is_in_percent_format() -> None:
    lines = NOTEBOOK.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# %% [markdown]"
    assert sum(line.startswith("# %%") for line in lines) >= 8


def test_the_notebook_runs_as_a_script(tmp_path: Path) -> None:
    # Run from examples/ (sample_data/ is found upwards); its files go to our tmp_path.
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env.pop("SCRAPER_API_BASE_URL", None)
    env.pop("GEONODE_SCRAPER_API_KEY", None)
    done = subprocess.run(
        [sys.executable, str(NOTEBOOK)],
        cwd=NOTEBOOK.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "25 rows" in lines
    assert "status completed, 5 failed, 19 tokens charged" in lines
    assert lines[-2].startswith("read back 25 rows from ") and lines[-2].endswith("the same frame")
    (parquet,) = tmp_path.glob("*/items.parquet")
    assert pq.read_metadata(parquet).num_rows == 25
    assert "<svg" in (parquet.parent / "report.html").read_text(encoding="utf-8")
