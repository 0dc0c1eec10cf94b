"""The jobs the benchmark serves, and the emulator process that serves them.

Each job is made by :func:`batch_export.testing.generate_job` from a fixed seed, so every run
(and every machine) measures the same bytes. The emulator runs in a process of its own, so
that its memory and its CPU time are not counted against the program measured; it writes its
base URL to a ready file once it listens, and serves until SIGTERM.

Run by the benchmark as::

    python -m bench.jobs --latency-ms 30 --ready-file /tmp/ready md10k
"""

from __future__ import annotations

import argparse
import signal
import sys
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


def serve(job_ids: list[str], *, latency_ms: float, ready_file: Path) -> None:
    """Serve the jobs on 127.0.0.1 until SIGTERM or SIGINT; the ready file holds the URL."""
    from batch_export.testing import Emulator, Faults, server

    # socketserver listens with a backlog of 5: eight clients connecting at once overflow
    # it, and the kernel drops SYNs that are sent again one second later (a 1 s stall in a
    # 0.1 s run). A real API's backlog is far larger.
    server._Server.request_queue_size = 128
    docs = [JOBS[job_id].document() for job_id in job_ids]
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
    parser.add_argument("jobs", nargs="+", choices=sorted(JOBS))
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--ready-file", type=Path, required=True)
    args = parser.parse_args(argv)
    serve(args.jobs, latency_ms=args.latency_ms, ready_file=args.ready_file)


if __name__ == "__main__":
    sys.exit(main())
