"""SIGKILL at random moments: `batch-export sync` run as a real process, killed, rerun.

After each kill, a reader following the documented rule must see only whole jobs, each once;
after the last run, the dataset must be the one a sync never interrupted writes. The syncs run
with their default of several jobs at once, so kills land amid several jobs' steps.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from batch_export.testing import Emulator
from tests.conftest import CANARY_KEY
from tests.sync.conftest import Synced, account_docs, expected_rows, kill_after
from tests.sync.readers import connect, items_table, jobs_table, reader_view

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

EXPECTED = expected_rows(account_docs())
KILLS = 6


def sync_process(dest: Path, base_url: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "SCRAPER_API_BASE_URL": base_url,
        "GEONODE_SCRAPER_API_KEY": CANARY_KEY,
    }
    command = [sys.executable, "-m", "batch_export", "sync", "--dest", str(dest)]
    return subprocess.Popen(
        [*command, "--log-format", "json"],  # jobs in parallel, as by default
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_at_random_moments_then_rerun_gives_the_same_dataset(
    reference: Synced, tmp_path: Path
) -> None:
    rng = random.Random(int(os.environ.get("SYNC_KILL_SEED", "6")))
    dest = tmp_path / "dataset"
    con = connect()
    with Emulator(jobs=account_docs(), api_key=CANARY_KEY) as emulator:
        committed: list[int] = []
        for kill in range(KILLS):
            process = sync_process(dest, emulator.base_url)
            if kill == 0:  # anywhere: while starting, listing, or in the first jobs
                kill_after(process, exported=0, delay=rng.uniform(0.2, 1.0))
            else:  # inside the steps of a job: a delay shorter than a job takes
                kill_after(process, exported=rng.randint(1, 25), delay=rng.uniform(0, 0.01))
            assert process.returncode == -signal.SIGKILL
            view = reader_view(str(dest), EXPECTED, con)  # asserts: whole jobs only, each once
            committed.append(len(view.committed))
        # Every kill landed mid-sync (a run exports at most 25 jobs before its kill), and the
        # runs made progress. (Not monotonic: a job being exported again is briefly absent.)
        assert 0 < committed[-1] < len(EXPECTED)

        final = sync_process(dest, emulator.base_url)
        out, _ = final.communicate(timeout=60)
        assert final.returncode == 0
        assert json.loads(out)["exit_code"] == 0

        again = sync_process(dest, emulator.base_url)
        out, _ = again.communicate(timeout=60)
        assert again.returncode == 0 and json.loads(out)["exported"] == []

    assert reader_view(str(dest), EXPECTED, con).committed == EXPECTED
    reference_con = connect()
    assert items_table(str(dest), con).equals(items_table(str(reference.root), reference_con))
    assert jobs_table(str(dest), con).equals(jobs_table(str(reference.root), reference_con))
    files = [
        sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        for root in (dest, reference.root)
    ]
    assert files[0] == files[1]
