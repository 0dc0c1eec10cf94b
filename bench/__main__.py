"""`python -m bench`: batch-export against a pandas script, dlt and the floors.

Starts the emulator in processes of its own (one per latency, one for the account) with
generated jobs, measures batch-export (the real CLI: `export` on each job, `sync` on the
account), the pandas script of bench/baseline_pandas.py, dlt (bench/peer_dlt.py, when `make
bench-peers` has made .venv-peers), the network floors and the compute floor, each in a child
process, prints the tables and writes them into BENCHMARKS.md. Everything runs on 127.0.0.1;
every child is killed if it outlives its time.

    python -m bench            # the full run, about 6 minutes; writes BENCHMARKS.md
    python -m bench --quick    # under a minute; writes bench/results/quick.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench import measure, report, runner

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument(
        "--concurrency", type=int, default=8, help="for batch-export and the network floor"
    )
    parser.add_argument("--output", type=Path, help="the markdown file to write the tables to")
    args = parser.parse_args(argv)
    the_plan = runner.plan(quick=args.quick, concurrency=args.concurrency)
    started = time.monotonic()
    # Other work on the machine shows in every figure: the ratios, taken side by side in one
    # run, are what to read when the machine is shared. The load is said with them.
    load_before = os.getloadavg()
    results, decoders = runner.execute(the_plan)
    loads = {"load average (1, 5, 15 min), start": _load(load_before)}
    loads["load average (1, 5, 15 min), end"] = _load(os.getloadavg())
    machine = measure.machine({**runner.peer_versions(), **loads})
    text = report.section(the_plan, results, decoders, machine)
    print(text)
    output = args.output or (
        ROOT / "bench" / "results" / "quick.md" if args.quick else ROOT / "BENCHMARKS.md"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    report.write_section(output, text, title="Benchmarks")
    _save_raw(ROOT / "bench" / "results" / ("quick.json" if args.quick else "full.json"), results)
    print(f"Wrote {output} in {time.monotonic() - started:.0f} s.", file=sys.stderr)
    failed = [name for name, row in results.items() for r in row.values() if r.errors]
    if failed:
        print(f"Some runs failed: {', '.join(sorted(set(failed)))}", file=sys.stderr)
        return 1
    return 0


def _load(averages: tuple[float, float, float]) -> str:
    return ", ".join(f"{value:.1f}" for value in averages)


def _save_raw(path: Path, results: report.Results) -> None:
    """Every run's figures as JSON, for whoever wants more than the medians."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = {
        scenario: {
            contender: {
                "runs": [
                    {k: v for k, v in asdict(run).items() if k not in ("stdout", "stderr")}
                    for run in result.runs
                ],
                "timed": result.timed,
                "errors": result.errors,
            }
            for contender, result in row.items()
        }
        for scenario, row in results.items()
    }
    path.write_text(json.dumps(raw, indent=2), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
