"""The benchmark's tables: printed for a person, and written into BENCHMARKS.md.

BENCHMARKS.md keeps what people wrote around the results: only the part between the two
markers below is replaced by a run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import dlt_source
from bench.runner import BATCH_EXPORT, COMPUTE, DLT, NETWORK, PANDAS, Plan, Result, Scenario

START = "<!-- bench:results:start (written by `make bench`; edits here are replaced) -->"
END = "<!-- bench:results:end -->"
Results = dict[str, dict[str, Result]]


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: what it asks, how to measure it, and the bar.

    A run of ``scenario`` that failed (an exit code, a wrong row count, a row twice) fails
    the target whatever the other runs measured.
    """

    text: str
    measure: Callable[[Results], float | None]
    unit: str
    passes: Callable[[float], bool]
    scenario: str


def _get(results: Results, scenario: str, contender: str) -> Result | None:
    result = results.get(scenario, {}).get(contender)
    return result if result is not None and result.runs else None


def _ratio(scenario: str, top: str, bottom: str) -> Callable[[Results], float | None]:
    def ratio(results: Results) -> float | None:
        a, b = _get(results, scenario, top), _get(results, scenario, bottom)
        return a.seconds / b.seconds if a and b else None

    return ratio


def _rss(scenario: str) -> Callable[[Results], float | None]:
    def rss(results: Results) -> float | None:
        result = _get(results, scenario, BATCH_EXPORT)
        return result.peak_rss_mb if result else None

    return rss


def _rss_ratio(results: Results) -> float | None:
    big, small = _rss("md100k@0ms")(results), _rss("md1k@0ms")(results)
    return big / small if big and small else None


def targets(the_plan: Plan) -> tuple[Target, ...]:
    """The targets of issue 11 (and one kept from the first round), for this run's plan."""
    fixed = (
        Target(
            "10,000 items at 30 ms: batch-export within 1.3x of the network floor",
            _ratio("md10k@30ms", BATCH_EXPORT, NETWORK),
            "x",
            lambda value: value <= 1.3,
            "md10k@30ms",
        ),
        Target(
            "100,000 items, no latency: at most 0.3x the pandas script's wall time "
            "(stretch: 0.25x)",
            _ratio("md100k@0ms", BATCH_EXPORT, PANDAS),
            "x",
            lambda value: value <= 0.3,
            "md100k@0ms",
        ),
        Target(
            "Peak RSS of the 100,000-item export under 250 MB",
            _rss("md100k@0ms"),
            " MB",
            lambda value: value < 250,
            "md100k@0ms",
        ),
        Target(
            "Peak RSS of 100,000 items within 1.3x that of 1,000 items",
            _rss_ratio,
            "x",
            lambda value: value <= 1.3,
            "md1k@0ms",
        ),
        Target(
            "Peak RSS of the html export under 300 MB",
            _rss("html10k@0ms"),
            " MB",
            lambda value: value < 300,
            "html10k@0ms",
        ),
    )
    accounts = tuple(
        Target(
            f"Account sync, {scenario.job.label}, {scenario.latency_ms:g} ms, default "
            "options: within 1.5x of the account's network floor, every row exactly once",
            _ratio(scenario.name, BATCH_EXPORT, NETWORK),
            "x",
            lambda value: value <= 1.5,
            scenario.name,
        )
        for scenario in the_plan.scenarios
        if scenario.is_account
    )
    first_round = Target(
        "(first round) 10,000 items at 30 ms: at least 6x faster than the pandas script",
        _ratio("md10k@30ms", PANDAS, BATCH_EXPORT),
        "x",
        lambda value: value >= 6,
        "md10k@30ms",
    )
    return (*fixed, *accounts, first_round)


def _cell(result: Result | None, contender: str) -> str:
    if result is None:
        return "-"
    if not result.runs:
        return "failed: " + _escape(result.errors[0][:60])
    text = f"{result.seconds:.2f} s, {result.peak_rss_mb:.0f} MB"
    if contender in (NETWORK, COMPUTE) and result.timed_seconds is not None:
        text += f" ({result.timed_seconds:.2f} s timed)"
    return text


def _scenario_label(scenario: Scenario) -> str:
    width = f", concurrency {scenario.concurrency}" if scenario.concurrency is not None else ""
    return f"{scenario.job.label}, {scenario.latency_ms:g} ms{width}"


def _escape(text: str) -> str:
    """An error message made safe for a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def results_table(the_plan: Plan, results: Results) -> list[str]:
    """Wall seconds and peak RSS of every contender, one row per job scenario (markdown)."""
    contenders = (BATCH_EXPORT, PANDAS, DLT, NETWORK, COMPUTE)
    against = (PANDAS, DLT, NETWORK)
    lines = [
        "| job, latency | "
        + " | ".join(contenders)
        + " | "
        + " | ".join(f"batch-export ÷ {name}" for name in against)
        + " |",
        "|---" * (len(contenders) + len(against) + 1) + "|",
    ]
    for scenario in the_plan.scenarios:
        if scenario.is_account:
            continue
        row = results[scenario.name]
        cells = [_contender_cell(scenario, row, c) for c in contenders]
        ratios = [_ratio(scenario.name, BATCH_EXPORT, name)(results) for name in against]
        shown = [f"{r:.2f}x" if r is not None else "-" for r in ratios]
        lines.append(f"| {_scenario_label(scenario)} | " + " | ".join(cells + shown) + " |")
    return lines


def _contender_cell(scenario: Scenario, row: dict[str, Result], contender: str) -> str:
    if contender in row:
        return _cell(row[contender], contender)
    if contender == DLT and scenario.peers:
        return "not run (make bench-peers)"
    return "-"


def account_table(the_plan: Plan, results: Results) -> list[str]:
    """The account sync against the account's network floor, and the dataset's check."""
    lines = [
        "| account, latency | batch-export sync | network floor | sync ÷ network floor "
        "| dataset checked |",
        "|---|---|---|---|---|",
    ]
    for scenario in the_plan.scenarios:
        if not scenario.is_account:
            continue
        row = results[scenario.name]
        ours = row[BATCH_EXPORT]
        ratio = _ratio(scenario.name, BATCH_EXPORT, NETWORK)(results)
        if ours.errors:
            runs = len(ours.errors) + len(ours.runs)
            first = _escape(ours.errors[0][:160])
            checked = f"**no** ({len(ours.errors)} of {runs} runs): {first}"
        elif ours.runs:
            checked = f"every row once, in {len(ours.runs)} of {len(ours.runs)} runs"
        else:
            checked = "-"
        cells = [
            f"{_scenario_label(scenario)}",
            _cell(ours, BATCH_EXPORT),
            _cell(row.get(NETWORK), NETWORK),
            f"{ratio:.2f}x" if ratio is not None else "-",
            checked,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _without_startup(results: Results, startup: float | None) -> float | None:
    """batch-export at 10,000 items and 30 ms, less its start-up, over the network floor."""
    ours, floor = _get(results, "md10k@30ms", BATCH_EXPORT), _get(results, "md10k@30ms", NETWORK)
    if not (ours and floor and startup):
        return None
    return (ours.seconds - startup) / floor.seconds


def targets_table(the_plan: Plan, results: Results, startup: float | None = None) -> list[str]:
    """Each target of the issue, what was measured, and whether it was met."""
    lines = ["| target | measured | met |", "|---|---|---|"]
    for target in targets(the_plan):
        value = target.measure(results)
        row = results.get(target.scenario, {}).values()
        failed = [error for result in row for error in result.errors]
        measured = "not measured in this run" if value is None else f"{value:.2f}{target.unit}"
        if failed:
            runs = sum(len(result.errors) + len(result.runs) for result in row)
            measured += f"; {len(failed)} of {runs} runs failed: " + _escape(failed[0][:160])
            verdict = "**no**"
        elif value is None:
            verdict = "-"
        else:
            verdict = "yes" if target.passes(value) else "**no**"
        lines.append(f"| {target.text} | {measured} | {verdict} |")
    bare = _without_startup(results, startup)
    if bare is not None:
        lines.append(
            "| (for information) the same, less batch-export's start-up measured alone "
            f"| {bare:.2f}x | - |"
        )
    return lines


def decoders_table(decoders: dict[str, object]) -> list[str]:
    """Seconds to turn the same pages into record batches, per way."""
    if "error" in decoders:
        return [f"The decoders could not be measured: {decoders['error']}"]
    megabytes = float(str(decoders["bytes"])) / 1e6
    lines = [
        f"The {decoders['pages']} pages of `{decoders['job']}` ({megabytes:.0f} MB of JSON), "
        "turned into record batches of the output schema (not written):",
        "",
        "| way | 1 thread | 2 threads | MB/s on 1 thread |",
        "|---|---|---|---|",
    ]
    for name, timings in decoders.items():
        if not isinstance(timings, dict) or "1 thread" not in timings:
            continue
        one, two = timings["1 thread"], timings["2 threads"]
        lines.append(f"| {name} | {one:.2f} s | {two:.2f} s | {megabytes / one:.0f} |")
    return lines


def _startup_seconds(extras: dict[str, object]) -> float | None:
    startup = extras.get("startup")
    return float(startup["seconds"]) if isinstance(startup, dict) else None


def _startup_line(decoders: dict[str, object]) -> list[str]:
    startup = decoders.get("startup")
    if not isinstance(startup, dict):
        return []
    return [
        f"Start-up alone (`python -c 'import batch_export.cli'`): {startup['seconds']:.2f} s, "
        f"{startup['peak_rss_mb']:.0f} MB; part of every batch-export figure above."
    ]


def machine_lines(machine: dict[str, str]) -> list[str]:
    """The machine and the versions, as a bullet list."""
    return [f"- {key}: {value}" for key, value in machine.items()]


def section(
    the_plan: Plan, results: Results, decoders: dict[str, object], machine: dict[str, str]
) -> str:
    """The generated part of BENCHMARKS.md."""
    lines = [
        START,
        "",
        f"Measured by `python -m bench` ({the_plan.repetitions} repetitions, medians shown; "
        f"concurrency {the_plan.concurrency} for batch-export and the network floor).",
        "",
        *machine_lines(machine),
        "",
        "### Targets",
        "",
        *targets_table(the_plan, results, _startup_seconds(decoders)),
        "",
        "### Wall time and peak RSS",
        "",
        "Each cell: wall seconds from process start to exit, and the process's peak RSS. "
        "dlt (`bench/peer_dlt.py`, in `.venv-peers`) reads the same job from the same "
        "emulator with its `rest_api` source (page-number paginator, one page at a time, "
        "its defaults) into Parquet files.",
        "",
        *results_table(the_plan, results),
        "",
        *_startup_line(decoders),
        "",
        "### Account sync",
        "",
        "`batch-export sync --dest DIR` with its default options, into an empty folder, "
        "against an emulator serving only that account; the network floor fetches every "
        f"page of the listing and every page of every job with {the_plan.concurrency} "
        "connections and throws the bodies away. After each sync the dataset is read back: "
        "as many rows as the account's items, each (job_id, input_index) once, every job.",
        "",
        *account_table(the_plan, results),
        "",
        "### The dlt source beside the sync",
        "",
        dlt_source.DESCRIPTION,
        "",
        *dlt_source.table(the_plan, results),
        "",
        "### From JSON bytes to Arrow",
        "",
        *decoders_table(decoders),
        "",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, text: str, *, title: str) -> None:
    """Put ``text`` between the markers of ``path``, or make the file with it."""
    if path.exists():
        current = path.read_text(encoding="utf-8")
        if START in current and END in current:
            before = current[: current.index(START)]
            after = current[current.index(END) + len(END) :].lstrip("\n")
            path.write_text(before + text + ("\n" + after if after else ""), encoding="utf-8")
            return
        path.write_text(current.rstrip("\n") + "\n\n" + text, encoding="utf-8")
        return
    path.write_text(f"# {title}\n\n{text}", encoding="utf-8")
