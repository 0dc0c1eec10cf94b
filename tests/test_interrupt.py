"""Ctrl-C ends an export at once: exit 130, one sentence, no temporary file left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch_export.testing import Emulator, Faults, generate_job
from tests.conftest import CANARY_KEY

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

# Each answer takes this long: an export that waited for its requests in flight before it
# stopped would take seconds more than the bound below.
LATENCY_MS = 4_000


@pytest.mark.parametrize(
    "answered_before_stop", [0, 1], ids=["status-in-flight", "pages-in-flight"]
)
def test_sigint_ends_an_export_within_seconds(tmp_path: Path, answered_before_stop: int) -> None:
    job = generate_job(job_id="slow", items=2_000, seed=5)
    with Emulator(jobs=[job], api_key=CANARY_KEY, faults=Faults(latency_ms=LATENCY_MS)) as api:
        out = tmp_path / "out.parquet"
        process = subprocess.Popen(
            [sys.executable, "-m", "batch_export", "export", "slow", "-o", str(out),
             "--quiet", "--page-size", "10", "--concurrency", "4",
             "--base-url", api.base_url],
            env={**os.environ, "GEONODE_SCRAPER_API_KEY": CANARY_KEY},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while len(api.requests) < answered_before_stop and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.0)  # the next requests are on their way (and, started, the interpreter)
        assert process.poll() is None, "the export ended before it could be interrupted"
        process.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        out_text, err_text = process.communicate(timeout=10)
        took = time.monotonic() - stopped
    assert process.returncode == 130, err_text
    assert took < 2.5, f"Ctrl-C took {took:.2f} s"
    assert err_text.strip().splitlines() == [
        "Error: Interrupted: no partial file was left (sync keeps the jobs it finished)."
    ]
    assert "Traceback" not in out_text + err_text
    assert list(tmp_path.iterdir()) == [], "a file was left behind"
