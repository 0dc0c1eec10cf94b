"""Run one program in a child process and measure it: wall seconds and peak RSS.

The peak RSS is the child's own ``ru_maxrss``, read with :func:`os.wait4` for that child
alone, so neither the runner nor the emulator is counted. The wall time runs from the spawn
to the exit: interpreter start and imports are part of what a user waits for.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

# Any program measured is killed after this long: a hung run must not hang the benchmark.
RUN_TIMEOUT = 180.0


@dataclass(frozen=True)
class Run:
    """What one child process did."""

    seconds: float
    peak_rss_mb: float
    exit_code: int
    stdout: str
    stderr: str

    def json_line(self) -> dict[str, Any]:
        """The last line of stdout, parsed as JSON (the floors' and decoders' report)."""
        result: dict[str, Any] = json.loads(self.stdout.strip().splitlines()[-1])
        return result


def run(argv: list[str], *, env: dict[str, str] | None = None) -> Run:
    """Run ``argv`` to its end (killed after :data:`RUN_TIMEOUT`), measured."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        killer = threading.Timer(RUN_TIMEOUT, process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        return Run(
            seconds=seconds,
            peak_rss_mb=usage.ru_maxrss / 1024,  # KiB on Linux
            exit_code=process.returncode,
            stdout=out.read().decode("utf-8", errors="replace"),
            stderr=err.read().decode("utf-8", errors="replace"),
        )


def machine() -> dict[str, str]:
    """Cores, memory, CPU model, Python and library versions, and the date."""
    return {
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **{name: _version(name) for name in ("pandas", "pyarrow", "requests", "urllib3", "orjson")},
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
