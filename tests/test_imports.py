"""What each command loads: start-up is part of every run a user waits for.

pandas costs a third of a second of CPU to import and neither the export nor the sync needs
it (pyarrow imports it on its first conversion of Python values: the roads avoid those); the
help of a command needs no Arrow at all. Each case runs the real CLI in a fresh interpreter,
against the emulator, and reads back which modules it had loaded at exit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch_export.testing import Emulator, generate_account
from tests.conftest import CANARY_KEY, SMALL_JOB

# Runs the CLI as `python -m batch_export` does, then writes the loaded modules' names.
_PROBE = """
import json, runpy, sys
out = sys.argv.pop(1)
try:
    runpy.run_module("batch_export", run_name="__main__", alter_sys=True)
finally:
    with open(out, "w") as handle:
        json.dump(sorted(sys.modules), handle)
"""


def _loaded(tmp_path: Path, args: list[str], env: dict[str, str]) -> set[str]:
    out = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(out.read_text()))


def _tops(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_export_help_loads_no_arrow(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, ["export", "--help"], {})
    assert not _tops(loaded) & {"pyarrow", "pandas", "numpy"}
    assert not {"batch_export.sync", "batch_export.testing"} & loaded


def test_the_export_road_loads_no_arrow_before_its_first_request() -> None:
    # pyarrow loads on a thread while the first requests are in flight (pipeline's
    # load_arrow_side); a module of the road that imported it would make them wait for it.
    probe = "import sys, batch_export.cli.export, batch_export.export, batch_export.pipeline\n"
    probe += "print(sorted(n for n in sys.modules if n.split('.')[0] in ('pyarrow', 'numpy')))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_export_loads_no_pandas(sample_api: Emulator, tmp_path: Path) -> None:
    env = {"SCRAPER_API_BASE_URL": sample_api.base_url, "GEONODE_SCRAPER_API_KEY": CANARY_KEY}
    output = tmp_path / "out.parquet"
    loaded = _loaded(tmp_path, ["export", SMALL_JOB, "-o", str(output), "--quiet"], env)
    assert output.exists()
    assert "pyarrow" in loaded  # the probe saw the export's own modules
    assert "pandas" not in _tops(loaded)


def test_a_quiet_export_loads_no_progress_bars(sample_api: Emulator, tmp_path: Path) -> None:
    # tqdm.auto loads asyncio and importlib.metadata: 60 ms before the first request.
    env = {"SCRAPER_API_BASE_URL": sample_api.base_url, "GEONODE_SCRAPER_API_KEY": CANARY_KEY}
    output = tmp_path / "out.parquet"
    loaded = _loaded(tmp_path, ["export", SMALL_JOB, "-o", str(output), "--quiet"], env)
    assert output.exists()
    assert "tqdm" not in _tops(loaded)


def test_sync_loads_no_pandas(tmp_path: Path) -> None:
    jobs = generate_account(jobs=6, processing=0, seed=3)
    with Emulator(jobs=jobs, api_key=CANARY_KEY) as emulator:
        env = {"SCRAPER_API_BASE_URL": emulator.base_url, "GEONODE_SCRAPER_API_KEY": CANARY_KEY}
        dest = tmp_path / "dest"
        loaded = _loaded(tmp_path, ["sync", "--dest", str(dest)], env)
    assert len(list((dest / "jobs").rglob("*.parquet"))) == 6
    assert "pandas" not in _tops(loaded)


@pytest.mark.parametrize("command", ["report", "sync", "compact"])
def test_other_commands_help_loads_no_pandas(tmp_path: Path, command: str) -> None:
    assert "pandas" not in _tops(_loaded(tmp_path, [command, "--help"], {}))
