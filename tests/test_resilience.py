"""Issue 3's promise, end to end: complete and exact through faults, or a loud failure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from batch_export.errors import RetriesExhaustedError
from batch_export.export import export
from batch_export.fetch.retry import RetryPolicy
from batch_export.testing import Emulator, Faults, generate_job
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, item, paged, scripted_server

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

FAST_RETRY = RetryPolicy(attempts=12, base_delay=0.005, max_delay=0.05, retry_after_cap=0.05)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_faults_change_nothing_in_the_output(tmp_path: Path, fmt: str) -> None:
    doc = generate_job(job_id="faulty", items=2000, seed=11, markdown_bytes=200, failure_rate=0.1)
    with Emulator(jobs=[doc], api_key=CANARY_KEY) as emulator:
        clean = export(
            "faulty", tmp_path / f"clean.{fmt}", base_url=emulator.base_url, api_key=CANARY_KEY
        )
        emulator.set_faults(
            Faults(
                seed=4,
                throttle_rate=0.10,
                server_error_rate=0.05,
                drop_rate=0.03,
                truncate_rate=0.02,
            )
        )
        faulty = export(
            "faulty",
            tmp_path / f"faulty.{fmt}",
            base_url=emulator.base_url,
            api_key=CANARY_KEY,
            retry=FAST_RETRY,
            concurrency=4,
        )
        faults = [r.fault for r in emulator.requests if r.fault]
    assert (tmp_path / f"clean.{fmt}").read_bytes() == (tmp_path / f"faulty.{fmt}").read_bytes()
    assert clean.requests["retries"] == 0
    assert faulty.requests["retries"] >= len(faults) > 0
    assert faulty.to_dict() | {"requests": {}, "output": {}} == (
        clean.to_dict() | {"requests": {}, "output": {}}
    )


def _start_export(base_url: str, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GEONODE_SCRAPER_API_KEY": CANARY_KEY, "SCRAPER_API_BASE_URL": base_url}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "batch_export",
            "export",
            "slowjob",
            "-o",
            str(out),
            "-q",
            "--concurrency",
            "1",
            "--page-size",
            "10",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_temporary(folder: Path, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.name.endswith(".tmp") for p in folder.iterdir()):
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("kill_after", [0.0, 0.3, 0.8])
def test_sigkill_leaves_the_previous_file_untouched(tmp_path: Path, kill_after: float) -> None:
    doc = generate_job(job_id="slowjob", items=300, seed=2, markdown_bytes=100)
    out = tmp_path / "out.csv"
    with Emulator(jobs=[doc], api_key=CANARY_KEY) as emulator:
        first = _start_export(emulator.base_url, out)
        _, error = first.communicate(timeout=60)
        assert first.returncode == 0, error.decode()
        good = out.read_bytes()
        emulator.set_faults(Faults(latency_ms=60))  # 30 pages: about two seconds
        victim = _start_export(emulator.base_url, out)
        assert _wait_for_temporary(tmp_path), "the export never started writing"
        time.sleep(kill_after)  # killed part way through the pages
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=10)
        assert victim.returncode == -signal.SIGKILL
        assert out.read_bytes() == good
        leftovers = [p.name for p in tmp_path.iterdir() if p.name != "out.csv"]
        assert len(leftovers) == 1 and leftovers[0].endswith(".tmp")
        emulator.set_faults(Faults())
        again = _start_export(emulator.base_url, out)
        _, error = again.communicate(timeout=60)
        assert again.returncode == 0, error.decode()
    assert out.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_a_failed_export_removes_its_temporary_file(tmp_path: Path) -> None:
    serve = paged("j1", [item(i) for i in range(120)])

    def script(number: int, path: str, query: dict[str, str]) -> Answer:
        if query.get("page") == "3":
            return Answer(status=502, body="<h1>Bad Gateway</h1>")
        return serve(number, path, query)

    with scripted_server(script) as server:
        with pytest.raises(RetriesExhaustedError, match=r"HTTP 502: Bad Gateway\. Tried 2 times"):
            export(
                "j1",
                tmp_path / "o.parquet",
                base_url=server.base_url,
                api_key=CANARY_KEY,
                max_retries=1,
                retry=FAST_RETRY,
                page_size=10,
                concurrency=1,
            )
    assert list(tmp_path.iterdir()) == []
