"""Run one program in a child process and measure it: wall seconds and peak RSS.

The peak RSS is the program's own ``ru_maxrss``, read with :func:`os.wait4` for that process
alone, so neither the runner nor the emulator is counted. The wall time runs from the spawn
to the exit: interpreter start and imports are part of what a user waits for.

The program is started by a small launcher (:data:`_LAUNCHER`, a bare interpreter of about
10 MB), not by the runner itself: Linux counts in a process's ``ru_maxrss`` the memory it
had between fork and exec, which is its parent's. Spawned by the runner (pyarrow loaded,
an account's jobs generated), every program would weigh at least what the runner weighs.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

# Any program measured is killed after this long: a hung run must not hang the benchmark.
RUN_TIMEOUT = 180.0

# argv: REPORT_FILE PROGRAM ARGS...; writes {"seconds", "rusage_kib", "status"} to REPORT_FILE.
_LAUNCHER = """\
import json, os, sys, time
started = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as report:
    json.dump({"seconds": seconds, "rusage_kib": usage.ru_maxrss, "status": status}, report)
"""


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
    with (
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
        tempfile.TemporaryDirectory(prefix="bench-run-") as folder,
    ):
        report = Path(folder) / "report.json"
        launcher = [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(report), *argv]
        started = time.perf_counter()
        process = subprocess.Popen(
            launcher, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
            start_new_session=True,  # its own group: a timeout kills the program too
        )  # fmt: skip
        killer = threading.Timer(RUN_TIMEOUT, os.killpg, (process.pid, signal.SIGKILL))
        killer.start()
        try:
            process.wait()
        finally:
            killer.cancel()
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", errors="replace")
        stderr = err.read().decode("utf-8", errors="replace")
        if not report.exists():  # killed, or the launcher failed
            seconds = time.perf_counter() - started
            return Run(seconds, 0.0, process.returncode or -1, stdout, stderr)
        measured = json.loads(report.read_text(encoding="utf-8"))
        return Run(
            seconds=measured["seconds"],
            peak_rss_mb=measured["rusage_kib"] / 1024,  # KiB on Linux
            exit_code=os.waitstatus_to_exitcode(measured["status"]),
            stdout=stdout,
            stderr=stderr,
        )


def machine(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Cores, memory, CPU model, Python and library versions (then ``extra``), and the date."""
    return {
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "cpu": _cpu_model(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **{name: _version(name) for name in ("pandas", "pyarrow", "requests", "pycurl", "orjson")},
        "libcurl": _libcurl(),
        **(extra or {}),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _libcurl() -> str:
    """The libcurl that batch-export and the network floors speak through (pycurl's own)."""
    try:
        import pycurl
    except ImportError:
        return "not installed"
    return str(pycurl.version_info()[1])


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
