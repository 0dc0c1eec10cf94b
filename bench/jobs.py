"""The jobs and accounts the benchmark serves, and the emulator process that serves them.

Each job is made by :func:`batch_export.testing.generate_job` from a fixed seed, each account
by :func:`batch_export.testing.generate_account` (every job finished), so every run (and every
machine) measures the same bytes. An account is served by an emulator of its own: the
listing of a sync must hold its jobs and nothing else. The emulator runs in a process of its own, so
that its memory and its CPU time are not counted against the program measured; it writes its
base URL to a ready file once it listens, and serves until SIGTERM.

Run by the benchmark as::

    python -m bench.jobs --latency-ms 30 --ready-file /tmp/ready md10k
    python -m bench.jobs --latency-ms 15 --ready-file /tmp/ready account1k
"""

from __future__ import annotations

import argparse
import functools
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

API_KEY = "bench-key"
PAGE_SIZE = 50


@dataclass(frozen=True)
class JobSpec:
    """A generated job: its id (also its name in the tables) and how it is made."""

    job_id: str
    label: str
    items: int
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The job's name in the tables and on the emulator's command line."""
        return self.job_id

    def document(self) -> dict[str, Any]:
        """The job document, the same on every run."""
        from batch_export.testing import generate_job

        return generate_job(job_id=self.job_id, items=self.items, **self.options)


JOBS: dict[str, JobSpec] = {
    spec.job_id: spec
    for spec in (
        JobSpec("md1k", "1,000 items, ~2 KB markdown", 1_000, {"seed": 1}),
        JobSpec("md10k", "10,000 items, ~2 KB markdown", 10_000, {"seed": 2}),
        JobSpec("md100k", "100,000 items, ~2 KB markdown", 100_000, {"seed": 3}),
        JobSpec(
            "html10k",
            "10,000 items, ~20 KB html + links",
            10_000,
            {
                "seed": 4,
                "formats": ("markdown", "html"),
                "html_bytes": 20_000,
                "links_per_item": 50,
            },
        ),
    )
}


@dataclass(frozen=True)
class AccountSpec:
    """A generated account of finished jobs, for ``batch-export sync``."""

    name: str
    label: str
    jobs: int
    seed: int
    items: tuple[int, int] = (5, 60)

    def documents(self) -> list[dict[str, Any]]:
        """The account's job documents, the same on every run (a few seconds for 1,000)."""
        from batch_export.testing import generate_account

        return generate_account(jobs=self.jobs, processing=0, seed=self.seed, items=self.items)

    def items_per_job(self) -> dict[str, int]:
        """Each job's number of items: the rows a sync must write for it."""
        return _items_per_job(self)


@functools.cache
def _items_per_job(spec: AccountSpec) -> dict[str, int]:
    # The documents are made again and dropped: kept, they would weigh on the runner.
    return {doc["job_id"]: len(doc["results"]) for doc in spec.documents()}


ACCOUNTS: dict[str, AccountSpec] = {
    spec.name: spec
    for spec in (
        AccountSpec("account1k", "1,000 finished jobs of 5 to 60 items", 1_000, seed=11),
        AccountSpec("account100", "100 finished jobs of 5 to 60 items", 100, seed=11),
    )
}


def documents(names: list[str]) -> list[dict[str, Any]]:
    """The documents of the named jobs and accounts."""
    docs: list[dict[str, Any]] = []
    for name in names:
        docs.extend(ACCOUNTS[name].documents() if name in ACCOUNTS else [JOBS[name].document()])
    return docs


def serve(names: list[str], *, latency_ms: float, ready_file: Path) -> None:
    """Serve the jobs on 127.0.0.1 until SIGTERM or SIGINT; the ready file holds the URL."""
    from batch_export.testing import Emulator, Faults, server

    # socketserver listens with a backlog of 5: eight clients connecting at once overflow
    # it, and the kernel drops SYNs that are sent again one second later (a 1 s stall in a
    # 0.1 s run). A real API's backlog is far larger.
    server._Server.request_queue_size = 128
    docs = documents(names)
    emulator = Emulator(jobs=docs, api_key=API_KEY, faults=Faults(latency_ms=latency_ms))
    stop = [signal.SIGTERM, signal.SIGINT]
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)  # delivered to sigwait below, nowhere else
    with emulator:
        temporary = ready_file.with_suffix(".tmp")
        temporary.write_text(emulator.base_url, encoding="utf-8")
        temporary.replace(ready_file)  # whole or absent: the runner never reads half a URL
        signal.sigwait(stop)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jobs", nargs="+", choices=sorted(JOBS.keys() | ACCOUNTS.keys()))
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.jobs, latency_ms=args.latency_ms, ready_file=args.ready_file)


if __name__ == "__main__":
    main()
