"""Where a sync's time goes, job by job: each phase's own CPU and wall time, in-process.

Starts an emulator serving one account (as ``make bench`` does), runs ``sync()`` into an
empty folder with the phases below wrapped in timers, and prints each phase's share per job:
its own CPU (``time.thread_time``, the phases nested inside it left out) and its own wall
time, and each thread's CPU. A phase whose function is not there (the stores change) is
left out of the table, not an error.

    python -m bench.sync_phases                 # account1k at 15 ms, 8 jobs at once
    python -m bench.sync_phases --jobs 1        # one job at a time
    python -m bench.sync_phases --dest-dir /dev/shm   # the dataset on tmpfs
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import functools
import importlib
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import runner
from bench.jobs import ACCOUNTS, API_KEY

# (module, attribute path, label): the phases of one job's load, outermost last.
PHASES = (
    ("batch_export.fetch.curl", "Transfer.wait", "fetch: waiting for the answer"),
    ("batch_export.fetch.client", "ApiClient.start", "fetch: the client's request"),
    ("batch_export.fetch.exchange", "Exchange.answer", "fetch: the client's answer"),
    ("batch_export.flatten.scan", "PageScanner.__call__", "scan (msgspec)"),
    ("batch_export.flatten.items", "read_bodies", "Arrow: pages read"),
    ("batch_export.writers.parquet", "ParquetWriter.__init__", "items file: Parquet opened"),
    ("batch_export.writers.parquet", "ParquetWriter.write", "items file: Parquet written"),
    ("batch_export.writers.parquet", "ParquetWriter.close", "items file: Parquet closed"),
    ("os", "fsync", "fsync"),
    ("batch_export.sync.stores.destination", "Destination.publish", "files: made, renamed"),
    ("batch_export.sync.stores.dataset", "job_row", "jobs row: built"),
    ("batch_export.sync.stores.dataset", "_parquet_bytes", "jobs row: Parquet bytes"),
    ("batch_export.sync.stores.dataset", "Marker.to_json", "marker: JSON"),
    ("batch_export.sync.stores.dataset", "DatasetStore.load", "store: the rest"),
    ("batch_export.sync.run", "_export_job", "job: the rest (open_job, events)"),
)


class Timers:
    """Each wrapped function's own time: what its callees (also wrapped) took is left out."""

    def __init__(self) -> None:
        self.spent: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0, 0])
        self._local = threading.local()

    def wrap(self, owner: Any, name: str, label: str) -> None:
        function = getattr(owner, name)

        @functools.wraps(function)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = self._local.__dict__.setdefault("stack", [])
            wall, cpu = time.perf_counter(), time.thread_time()
            stack.append([0.0, 0.0])
            try:
                return function(*args, **kwargs)
            finally:
                wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
                inner = stack.pop()
                spent = self.spent[label]
                spent[0] += cpu - inner[1]
                spent[1] += wall - inner[0]
                spent[2] += 1
                if stack:
                    stack[-1][0] += wall
                    stack[-1][1] += cpu

        setattr(owner, name, timed)


def _install(timers: Timers) -> list[str]:
    """Wrap every phase that exists; return the labels of those that do not."""
    missing = []
    for module_name, path, label in PHASES:
        try:
            owner: Any = importlib.import_module(module_name)
            *parents, name = path.split(".")
            for parent in parents:
                owner = getattr(owner, parent)
            getattr(owner, name)
        except (ImportError, AttributeError):
            missing.append(label)
            continue
        timers.wrap(owner, name, label)
    return missing


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by name."""
    names = {thread.native_id: thread.name for thread in threading.enumerate()}
    ticks = os.sysconf("SC_CLK_TCK")
    spent = {}
    for task in Path("/proc/self/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        if seconds >= 0.01:
            spent[names.get(int(task.name), task.name)] = seconds
    return spent


def _children_cpu() -> float:
    """CPU seconds so far of this process's child processes (the emulator), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    spent = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):  # a process that ended meanwhile
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == os.getpid():
                spent += (int(fields[11]) + int(fields[12])) / ticks
    return spent


def measure(base_url: str, *, jobs: int, dest_dir: str | None) -> str:
    """Sync the account at ``base_url`` with timed phases; the table, as text."""
    os.environ.update(SCRAPER_API_BASE_URL=base_url, GEONODE_SCRAPER_API_KEY=API_KEY)
    timers = Timers()
    missing = _install(timers)
    from batch_export.connection import Connection
    from batch_export.sync import sync

    with tempfile.TemporaryDirectory(prefix="sync-phases-", dir=dest_dir) as dest:
        wall, cpu, served = time.perf_counter(), time.process_time(), _children_cpu()
        report = sync(dest, connection=Connection(), jobs=jobs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        served = _children_cpu() - served
    count = max(1, len(report.exported))
    lines = [
        f"{len(report.exported)} jobs ({len(report.failed)} failed), {jobs} at once: "
        f"{wall:.2f} s wall, {cpu:.2f} s CPU, {1000 * cpu / count:.2f} ms of CPU a job",
        "",
        "| phase | CPU a job | wall a job | calls |",
        "|---|---|---|---|",
    ]
    for label, (spent_cpu, spent_wall, calls) in sorted(
        timers.spent.items(), key=lambda item: -item[1][0]
    ):
        lines.append(
            f"| {label} | {1000 * spent_cpu / count:.2f} ms | "
            f"{1000 * spent_wall / count:.2f} ms | {int(calls)} |"
        )
    lines.append("")
    lines += [f"- thread {name}: {seconds:.2f} s CPU" for name, seconds in _thread_cpu().items()]
    # The emulator shares the machine's cores: what it takes bounds what the sync can have.
    lines.append(f"- the emulator (a process of its own): {served:.2f} s CPU during the sync")
    lines += [f"- not measured (not there): {label}" for label in missing]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--account", default="account1k", choices=sorted(ACCOUNTS))
    parser.add_argument("--latency-ms", type=float, default=runner.ACCOUNT_LATENCY_MS)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--dest-dir", help="where the dataset is made (default: the temp dir)")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="sync-phases-") as work,
        runner.emulator([args.account], args.latency_ms, Path(work)) as base_url,
    ):
        print(measure(base_url, jobs=args.jobs, dest_dir=args.dest_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
