"""The dlt source's row: one account into DuckDB, by the sync and by dlt, side by side.

Two contenders of the account scenarios, each a child process with its default options, as a
scheduler would run it, into an empty folder:

- ``sync → DuckDB``: ``batch-export sync --dest duckdb:///OUT/warehouse.duckdb``;
- ``dlt source → DuckDB``: ``batch_export.dlt.batch_export_source()`` run by a dlt pipeline
  into dlt's ``duckdb`` destination (``python -m bench.dlt_source OUT``), telemetry off.

After each run the database is read back: every job of the account, each with its number
of items, each ``(job_id, input_index)`` once. The runner registers the contenders
(:data:`CONTENDERS`, :func:`command`, :func:`check`) and the report prints :func:`table`.

Run alone (``SCRAPER_API_BASE_URL`` and ``GEONODE_SCRAPER_API_KEY`` set)::

    python -m bench.dlt_source OUT_DIR
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.jobs import AccountSpec
    from bench.runner import Plan, Result

SYNC_DUCKDB = "sync → DuckDB"
DLT_DUCKDB = "dlt source → DuckDB"
CONTENDERS = (SYNC_DUCKDB, DLT_DUCKDB)
DATABASE = "warehouse.duckdb"
DATASET = "scraper"  # dlt's dataset: a schema of the DuckDB file
DESCRIPTION = (
    "The same account loaded into a DuckDB file by `batch-export sync --dest duckdb:///...` "
    "and by the dlt source (`batch_export.dlt.batch_export_source()` in a dlt pipeline to "
    "dlt's `duckdb` destination, `bench/dlt_source.py`), each with its default options, into "
    "an empty folder; dlt's figure includes importing dlt. After each run the database is read "
    "back: every job, each with its number of items, each (job_id, input_index) once."
)
_TABLES = {SYNC_DUCKDB: "items", DLT_DUCKDB: f"{DATASET}.items"}


def command(contender: str, out: Path) -> list[str]:
    """The child process of ``contender``, writing into the folder ``out``."""
    if contender == SYNC_DUCKDB:
        dest = f"duckdb://{out / DATABASE}"
        return [sys.executable, "-m", "batch_export", "sync", "--dest", dest]
    return [sys.executable, "-m", "bench.dlt_source", str(out)]


def check(contender: str, account: AccountSpec, out: Path) -> str | None:
    """Why the database does not hold every item of the account exactly once, or None."""
    import duckdb

    with duckdb.connect(str(out / DATABASE), read_only=True) as connection:
        found = {
            job_id: (rows, low, high, distinct)
            for job_id, rows, low, high, distinct in connection.sql(
                "SELECT job_id, count(*), min(input_index), max(input_index), "
                f"count(DISTINCT input_index) FROM {_TABLES[contender]} GROUP BY job_id"
            ).fetchall()
        }
    expected = {job: (n, 0, n - 1, n) for job, n in account.items_per_job().items()}
    wrong = sorted(
        job for job in expected.keys() | found.keys() if found.get(job) != expected.get(job)
    )
    if not wrong:
        return None
    return (
        f"{len(wrong)} of {account.jobs} jobs wrong in {_TABLES[contender]} (e.g. {wrong[0]}: "
        f"{found.get(wrong[0])}, expected {expected.get(wrong[0])})"
    )


def table(the_plan: Plan, results: dict[str, dict[str, Result]]) -> list[str]:
    """The two contenders per account scenario (markdown), checked as :func:`check` says."""
    lines = [
        f"| account, latency | {SYNC_DUCKDB} | {DLT_DUCKDB} | dlt ÷ sync | database checked |",
        "|---|---|---|---|---|",
    ]
    for scenario in the_plan.scenarios:
        row = results.get(scenario.name, {})
        if not all(contender in row for contender in CONTENDERS):
            continue
        sync, dlt = row[SYNC_DUCKDB], row[DLT_DUCKDB]
        ratio = dlt.seconds / sync.seconds if sync.runs and dlt.runs else None
        errors = [*sync.errors, *dlt.errors]
        runs = sum(len(r.runs) + len(r.errors) for r in (sync, dlt))
        checked = (
            f"**no** ({len(errors)} of {runs} runs): {errors[0][:160]}"
            if errors
            else (f"every row once, in {runs} of {runs} runs")
        )
        cells = [
            f"{scenario.job.label}, {scenario.latency_ms:g} ms",
            _cell(sync),
            _cell(dlt),
            f"{ratio:.2f}x" if ratio is not None else "-",
            checked.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _cell(result: Result) -> str:
    if not result.runs:
        return "failed"
    return f"{result.seconds:.2f} s, {result.peak_rss_mb:.0f} MB"


def main(argv: list[str] | None = None) -> int:
    """Load the account with the dlt source into DuckDB under OUT_DIR; print one JSON line."""
    out = Path((argv or sys.argv[1:])[0])
    # Before dlt is imported: its configuration is read from the environment.
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    import dlt

    from batch_export.dlt import batch_export_source, failed_jobs

    started = time.monotonic()
    pipeline = dlt.pipeline(
        pipeline_name="bench_account",
        pipelines_dir=str(out / "pipelines"),
        destination=dlt.destinations.duckdb(str(out / DATABASE)),
        dataset_name=DATASET,
    )
    pipeline.run(batch_export_source())
    failed = failed_jobs(pipeline)
    print(json.dumps({"seconds": round(time.monotonic() - started, 3), "failed": len(failed)}))
    return 10 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
