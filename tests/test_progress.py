"""The progress bar: shown on a terminal, silent in pipes and with --quiet.

The CLI runs in a child process whose stderr is a pseudo-terminal (or a pipe), as a user's
shell or a scheduler would give it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from batch_export.testing import Emulator, Faults, generate_job
from tests.conftest import CANARY_KEY

_DEADLINE = 30.0


@pytest.fixture(scope="module")
def api() -> Iterator[Emulator]:
    # Slow enough pages (about half a second in all) that the bar is drawn more than once.
    job = generate_job(job_id="j1", items=1_000, seed=2)
    with Emulator(jobs=[job], api_key=CANARY_KEY, faults=Faults(latency_ms=40)) as emulator:
        yield emulator


def _command(out: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "batch_export", "export", "j1", "-o", str(out),
        "--page-size", "25", *extra,
    ]  # fmt: skip


def _env(api: Emulator) -> dict[str, str]:
    return dict(os.environ, SCRAPER_API_BASE_URL=api.base_url, GEONODE_SCRAPER_API_KEY=CANARY_KEY)


def _stderr_on_a_terminal(command: list[str], env: dict[str, str]) -> str:
    """Run ``command`` with stderr on an 80x24 pseudo-terminal; return what it drew there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    with subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, env=env
    ) as process:
        os.close(slave)
        try:
            drawn = _read_until_closed(master, process)
            assert process.wait(timeout=_DEADLINE) == 0
        finally:
            process.kill()
            os.close(master)
    return drawn.decode("utf-8", errors="replace")


def _read_until_closed(master: int, process: subprocess.Popen[bytes]) -> bytes:
    drawn = bytearray()
    deadline = time.monotonic() + _DEADLINE
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if not ready:
            if process.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError as error:  # EIO: the child closed the terminal
            if error.errno != errno.EIO:
                raise
            break
        if not chunk:
            break
        drawn += chunk
    return bytes(drawn)


def test_a_terminal_gets_the_bar(api: Emulator, tmp_path: Path) -> None:
    drawn = _stderr_on_a_terminal(_command(tmp_path / "out.parquet"), _env(api))
    assert "exporting" in drawn
    # Items done of the total and a rate, redrawn as pages arrive, then cleared at the end.
    assert re.search(r"\| [1-9][0-9]*/1000 \[", drawn), drawn
    assert re.search(r"[0-9.]+item/s", drawn), drawn
    assert drawn.rstrip(" ").endswith("\r")
    assert CANARY_KEY not in drawn


def test_quiet_draws_nothing_on_a_terminal(api: Emulator, tmp_path: Path) -> None:
    drawn = _stderr_on_a_terminal(_command(tmp_path / "out.parquet", "--quiet"), _env(api))
    assert drawn == ""


def test_a_pipe_gets_no_bar(api: Emulator, tmp_path: Path) -> None:
    done = subprocess.run(
        _command(tmp_path / "out.parquet"),
        env=_env(api),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=_DEADLINE,
        check=True,
    )
    assert done.stderr == b""
    assert b"1000" in done.stdout.replace(b",", b"")  # the summary still goes to stdout
