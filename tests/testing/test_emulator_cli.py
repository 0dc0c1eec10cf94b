"""`batch-export emulator`: serves until a signal, then ends cleanly; refuses bad options."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import click
import pytest
import requests
from click.testing import CliRunner

from batch_export.cli.emulator import emulator

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
SMALL = "9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019"


class Running:
    """A `batch-export emulator` subprocess and the URL from its ready file."""

    def __init__(self, args: list[str], ready: Path, env: dict[str, str]) -> None:
        command = [sys.executable, "-m", "batch_export", "emulator", *args]
        command += ["--port", "0", "--ready-file", str(ready)]
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.ready = ready
        deadline = time.monotonic() + 20
        while not ready.exists() and self.process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), self.process.communicate(timeout=5)
        self.url = ready.read_text().strip()

    def stop(self, signum: int) -> tuple[int, str, str]:
        self.process.send_signal(signum)
        out, err = self.process.communicate(timeout=10)
        return self.process.returncode, out, err


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[list[str]], Running]]:
    started: list[Running] = []
    env = {**os.environ, "GEONODE_SCRAPER_API_KEY": "cli-key"}

    def run(args: list[str]) -> Running:
        running = Running(args, tmp_path / f"ready-{len(started)}", env)
        started.append(running)
        return running

    yield run
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.communicate()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serves_until_a_signal_then_exits_cleanly(
    start: Callable[[list[str]], Running], signum: int
) -> None:
    running = start(["--data", str(SAMPLE_DATA)])
    assert running.url.startswith("http://127.0.0.1:")
    answer = requests.get(
        f"{running.url}/v1/batch/{SMALL}", headers={"X-Api-Key": "cli-key"}, timeout=5
    )
    assert answer.status_code == 200 and answer.json()["total_urls"] == 25
    wrong = requests.get(f"{running.url}/v1/batch/{SMALL}", timeout=5)
    assert wrong.status_code == 401
    code, out, err = running.stop(signum)
    assert (code, err) == (0, "")
    assert out == f"Emulator serving 3 jobs at {running.url} (Ctrl-C to stop)\n"
    assert not running.ready.exists()


def test_generated_jobs_and_faults(start: Callable[[list[str]], Running]) -> None:
    running = start(
        ["--data", str(SAMPLE_DATA / "small-job.json"), "--generate", "4", "--throttle-rate", "1"]
    )
    headers = {"X-Api-Key": "cli-key"}
    answer = requests.get(f"{running.url}/v1/batch/{SMALL}", headers=headers, timeout=5)
    assert answer.status_code == 429
    code, out, err = running.stop(signal.SIGTERM)
    assert (code, err) == (0, "")
    assert out.startswith("Emulator serving 5 jobs at ")


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(emulator, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--throttle-rate", "0.6", "--drop-rate", "0.5"],
            "Error: --throttle-rate, --server-error-rate, --drop-rate and --truncate-rate add "
            "up to 1.1; at most 1 is possible.",
        ),
        (
            ["--drop-rate", "2"],
            "Error: Invalid value for '--drop-rate': 2.0 is not in the range 0.0<=x<=1.0.",
        ),
        (
            ["--data", "no/such/folder"],
            "Error: Invalid value for '--data': Path 'no/such/folder' does not exist.",
        ),
        (["--port", "70000"], "Error: Invalid value for '--port': 70000 is not in the range"),
    ],
)
def test_bad_options(args: list[str], message: str) -> None:
    code, output = invoke(*args)
    assert code == 2
    assert message in output


def test_broken_job_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"job_id": "x", "status": "running"}')
    code, output = invoke("--data", str(tmp_path))
    assert code == 2
    assert f"Error: Invalid value for '--data': {bad}: status is 'running'; expected" in output


def test_rates_adding_up_to_one_are_accepted(tmp_path: Path) -> None:
    bad_ready = tmp_path / "no-such-folder" / "ready"
    rates = ["--throttle-rate", "0.1", "--server-error-rate", "0.2", "--drop-rate", "0.7"]
    code, output = invoke(*rates, "--ready-file", str(bad_ready))
    assert code == 2
    assert output.endswith(
        f"Error: Invalid value for '--ready-file': Output folder '{bad_ready.parent}' does not "
        "exist: create it first or choose another --ready-file path.\n"
    )


def test_port_in_use() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, output = invoke("--port", str(port))
    assert code == 2
    assert output.endswith(
        f"Error: Invalid value for '--port': 127.0.0.1:{port} is already in use; "
        "choose another, or 0 for a free one.\n"
    )


def test_help_ends_with_an_example() -> None:
    code, output = invoke("--help")
    assert code == 0
    lines = output.rstrip().splitlines()
    assert "Example:" in lines[lines.index("Options:") - 5]
    assert isinstance(emulator, click.Command) and emulator.name == "emulator"
