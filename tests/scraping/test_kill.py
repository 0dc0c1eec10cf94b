"""The command killed at random moments (SIGKILL), or interrupted (Ctrl-C), then rerun.

Whatever the moment, the rerun ends with the right table and each batch made exactly once on
the server: the state file's intent and job id, and the search for a lost answer, hold.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from batch_export.testing import Emulator, Faults
from tests.conftest import CANARY_KEY
from tests.scraping.conftest import assert_table, input_lines, read_table, settings, write_input

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

KILLS = 10


def start(emulator: Emulator, urls: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GEONODE_SCRAPER_API_KEY": CANARY_KEY}
    env["SCRAPER_API_BASE_URL"] = emulator.base_url
    command = [sys.executable, "-m", "batch_export", "scrape", str(urls), "-o", str(out), "-q"]
    return subprocess.Popen(
        [*command, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def state_of(out: Path) -> dict[str, Any]:
    path = out.with_name(out.name + ".scrape.json")
    return json.loads(path.read_text()) if path.exists() else {"batches": []}


def assert_each_batch_made_once(emulator: Emulator, out: Path) -> None:
    assert emulator.desk is not None
    batches = state_of(out)["batches"]
    assert isinstance(batches, list)
    made = Counter(job.digest for job in emulator.desk.created)
    assert made == Counter(batch["digest"] for batch in batches)
    assert {job.job_id for job in emulator.desk.created} == {b["job_id"] for b in batches}


@pytest.mark.timeout(600)
def test_sigkill_at_random_moments_then_a_rerun_pays_for_each_batch_once(tmp_path: Path) -> None:
    lines = input_lines()
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.parquet"
    rng = random.Random(2026)
    # Answers take 40 ms after the job is made, and one POST answer in five is lost: the
    # kills land between a POST and its record, in searches, in waits and in exports.
    faults = Faults(latency_ms=40)
    submit = settings(processing_polls=2, post_drop_rate=0.2)
    with Emulator(api_key=CANARY_KEY, submit=submit, faults=faults) as emulator:
        killed_with = []
        for _ in range(KILLS):
            victim = start(emulator, urls, out)
            time.sleep(rng.uniform(0.3, 7.0))
            victim.send_signal(signal.SIGKILL)
            victim.communicate(timeout=30)
            killed_with.append(sum(b["job_id"] is not None for b in state_of(out)["batches"]))
        final = start(emulator, urls, out)
        _, error = final.communicate(timeout=300)
        assert final.returncode == 0, error.decode()
        assert_each_batch_made_once(emulator, out)
    assert_table(read_table(out), lines, resubmitted=True)
    assert len(set(killed_with)) > 1, f"every kill landed at the same step: {killed_with}"


@pytest.mark.parametrize("cancel", [False, True])
@pytest.mark.timeout(300)
def test_ctrl_c_leaves_the_jobs_running_or_cancels_them(tmp_path: Path, cancel: bool) -> None:
    lines = [f"https://a.example/{n}" for n in range(30)]
    urls, out = write_input(tmp_path, lines), tmp_path / "pages.csv"
    extra = ("--batch-size", "10") + (("--cancel-on-interrupt",) if cancel else ())
    with Emulator(api_key=CANARY_KEY, submit=settings(processing_polls=1000)) as emulator:
        victim = start(emulator, urls, out, *extra)
        deadline = time.monotonic() + 60
        while sum(b["job_id"] is not None for b in state_of(out)["batches"]) < 3:
            assert time.monotonic() < deadline and victim.poll() is None, "no job was submitted"
            time.sleep(0.1)
        victim.send_signal(signal.SIGINT)
        _, error = victim.communicate(timeout=30)
        assert victim.returncode == 130
        said = error.decode()
        assert "the state file is kept: rerun the same command" in said
        assert ("were cancelled" in said) is cancel
        assert emulator.desk is not None
        statuses = [doc["status"] for doc in emulator.desk.docs().values()]
        assert statuses == ["cancelled" if cancel else "completed"] * 3
        assert_each_batch_made_once(emulator, out)
    assert not out.exists()
