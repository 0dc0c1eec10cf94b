"""The committed sample jobs of ``sample_data/``, rebuilt the same way every time.

Run ``python -m batch_export.testing.sample sample_data`` to regenerate the files; the pytest
fixture ``emulator`` and ``batch-export emulator`` (without --data) serve the same jobs.

Example:

    >>> docs = sample_jobs()
    >>> sorted(docs)
    ['large-job.json', 'processing-job.json', 'small-job.json']
    >>> docs["small-job.json"]["job_id"]
    '9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019'
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path

from batch_export.testing.jobs import JobDoc, generate_job

__all__ = ["SMALL_JOB_ID", "main", "sample_jobs", "write_samples"]

SMALL_JOB_ID = "9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019"


def sample_jobs() -> dict[str, JobDoc]:
    """The sample job documents, by file name."""
    small = generate_job(
        job_id=SMALL_JOB_ID,
        items=25,
        seed=12,
        formats=("markdown", "html"),
        markdown_bytes=1500,
        links_per_item=5,
        failure_rate=0.2,
        cancelled=1,
        invalid_urls=1,
        created_at="2026-05-26T10:30:00Z",
    )
    large = generate_job(
        items=120,
        seed=120,
        markdown_bytes=1100,
        failure_rate=0.03,
        created_at="2026-05-25T14:05:00Z",
    )
    processing = generate_job(
        items=30,
        seed=30,
        markdown_bytes=700,
        failure_rate=0.1,
        processing_polls=3,
        created_at="2026-05-26T11:02:00Z",
    )
    return {"small-job.json": small, "large-job.json": large, "processing-job.json": processing}


def write_samples(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write the sample files into ``out_dir`` (made if missing); returns their paths."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, doc in sample_jobs().items():
        path = folder / name
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m batch_export.testing.sample OUT_DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m batch_export.testing.sample", description=__doc__.splitlines()[0]
    )
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the JSON files to")
    args = parser.parse_args(argv)
    for path in write_samples(args.out_dir):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
