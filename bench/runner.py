"""The benchmark run: emulators up, every contender measured per scenario, emulators down.

A scenario is one generated job served with one latency, or one account of finished jobs
that ``batch-export sync`` exports whole. Each contender runs in a child process of its own
(see :mod:`bench.measure`), interleaved with the others over the repetitions so that a noisy
moment does not fall on one contender only; the tables show the median of the repetitions.

dlt is a contender when ``make bench-peers`` has made its venv (``.venv-peers``): it runs
there, against the same emulator and job, in the same run.
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from bench import dlt_source, measure
from bench.jobs import ACCOUNTS, API_KEY, JOBS, AccountSpec, JobSpec

BATCH_EXPORT = "batch-export"
PANDAS = "pandas script"
DLT = "dlt"
NETWORK = "network floor"
COMPUTE = "compute floor"
CONTENDERS = (BATCH_EXPORT, PANDAS, NETWORK, COMPUTE)
ACCOUNT_LATENCY_MS = 15.0
_ROOT = Path(__file__).resolve().parent.parent
PEER_PYTHON = _ROOT / ".venv-peers" / "bin" / "python"
_READY_TIMEOUT = 120.0  # generating the 100,000-item job takes a few seconds
_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Scenario:
    """One job (or account) at one latency, and who runs against it."""

    job: JobSpec | AccountSpec
    latency_ms: float
    contenders: tuple[str, ...] = CONTENDERS
    concurrency: int | None = None  # None: the run's concurrency
    peers: bool = False  # dlt belongs here, whether or not its venv exists in this run

    @property
    def name(self) -> str:
        width = f" c={self.concurrency}" if self.concurrency is not None else ""
        return f"{self.job.name}@{self.latency_ms:g}ms{width}"

    @property
    def is_account(self) -> bool:
        """True for an account that ``batch-export sync`` exports whole."""
        return isinstance(self.job, AccountSpec)

    @property
    def server(self) -> tuple[float, str]:
        """Its emulator: one per latency for the jobs, one of its own for an account."""
        return self.latency_ms, self.job.name if self.is_account else ""


@dataclass
class Result:
    """Every repetition of one contender in one scenario."""

    runs: list[measure.Run] = field(default_factory=list)
    timed: list[float] = field(default_factory=list)  # a floor's own timed part
    errors: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(run.seconds for run in self.runs)

    @property
    def peak_rss_mb(self) -> float:
        return statistics.median(run.peak_rss_mb for run in self.runs)

    @property
    def timed_seconds(self) -> float | None:
        return statistics.median(self.timed) if self.timed else None


@dataclass(frozen=True)
class Plan:
    """What a run measures."""

    scenarios: tuple[Scenario, ...]
    repetitions: int
    concurrency: int
    decoders_job: JobSpec

    def concurrency_of(self, scenario: Scenario) -> int:
        return scenario.concurrency if scenario.concurrency is not None else self.concurrency


def plan(*, quick: bool, concurrency: int) -> Plan:
    """The default run (about 6 minutes) or the quick one (under a minute)."""
    md1k, md10k, md100k, html = (JOBS[n] for n in ("md1k", "md10k", "md100k", "html10k"))
    # Latency does not change the compute floor: it is measured at 0 ms only.
    online = (BATCH_EXPORT, PANDAS, NETWORK)
    have_dlt = PEER_PYTHON.exists()

    def with_dlt(job: JobSpec, latency_ms: float, contenders: tuple[str, ...]) -> Scenario:
        """dlt beside the pandas script, on the jobs of the targets that compare with it."""
        contenders = (*contenders[:2], DLT, *contenders[2:]) if have_dlt else contenders
        return Scenario(job, latency_ms, contenders, peers=True)

    sync = (BATCH_EXPORT, *dlt_source.CONTENDERS, NETWORK)
    if quick:
        scenarios: tuple[Scenario, ...] = (
            Scenario(md1k, 0),
            Scenario(md10k, 0),
            with_dlt(md10k, 30, online),
            Scenario(ACCOUNTS["account100"], ACCOUNT_LATENCY_MS, sync),
        )
        return Plan(scenarios, 1, concurrency, md10k)
    scenarios = (
        Scenario(md1k, 0),
        Scenario(md10k, 0),
        with_dlt(md10k, 30, online),
        with_dlt(md100k, 0, CONTENDERS),
        Scenario(html, 0),
        Scenario(html, 30, online),
        # How the width of the pool plays on two cores shared with the emulator.
        *(Scenario(md100k, 0, (BATCH_EXPORT, NETWORK), c) for c in (2, 4) if c != concurrency),
        Scenario(ACCOUNTS["account1k"], ACCOUNT_LATENCY_MS, sync),
    )
    return Plan(scenarios, 3, concurrency, md100k)


@contextmanager
def emulator(job_ids: list[str], latency_ms: float, workdir: Path) -> Iterator[str]:
    """An emulator process serving ``job_ids``; yields its base URL, stops it on exit."""
    ready = workdir / f"ready-{latency_ms:g}-{'-'.join(job_ids)}"
    command = [sys.executable, "-m", "bench.jobs", *job_ids]
    command += ["--latency-ms", str(latency_ms), "--ready-file", str(ready)]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=_env())
    try:
        deadline = time.monotonic() + _READY_TIMEOUT
        while not ready.exists():
            if process.poll() is not None:
                raise RuntimeError(f"the emulator exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator was not ready after {_READY_TIMEOUT:g} s")
            time.sleep(0.05)
        yield ready.read_text(encoding="utf-8").strip()
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _env(**extra: str) -> dict[str, str]:
    """The children's environment: this one, with the repository importable (bench.*)."""
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    return env


def _command(
    contender: str, scenario: Scenario, base_url: str, out: Path, concurrency: int
) -> list[str]:
    job = scenario.job
    if contender in dlt_source.CONTENDERS:
        return dlt_source.command(contender, out)
    if isinstance(job, AccountSpec):
        # The sync with its default options, as a scheduler would run it.
        if contender == BATCH_EXPORT:
            return [sys.executable, "-m", "batch_export", "sync", "--dest", str(out)]
        return [
            sys.executable, "-m", "bench.floors", "account", base_url,
            "--concurrency", str(concurrency),
        ]  # fmt: skip
    if contender == DLT:
        script = Path(__file__).with_name("peer_dlt.py")
        return [str(PEER_PYTHON), str(script), base_url, job.job_id, str(out)]
    if contender == BATCH_EXPORT:
        return [
            sys.executable, "-m", "batch_export", "export", job.job_id, "-o", str(out),
            "--quiet", "--concurrency", str(concurrency),
        ]  # fmt: skip
    if contender == PANDAS:
        script = Path(__file__).with_name("baseline_pandas.py")
        return [sys.executable, str(script), base_url, job.job_id, str(out)]
    floor = "network" if contender == NETWORK else "compute"
    return [
        sys.executable, "-m", "bench.floors", floor, base_url, job.job_id, str(job.items),
        "--concurrency", str(concurrency), "--output", str(out),
    ]  # fmt: skip


def _check(contender: str, scenario: Scenario, run: measure.Run, out: Path) -> str | None:
    """Why a run does not count, or None: it must exit 0 and write every row."""
    if run.exit_code != 0:
        # A sync names each job that failed, and why, on a line of its own.
        lines = run.stderr.strip().splitlines()
        failed = next((line for line in lines if "FAILED" in line), None)
        return f"exit {run.exit_code}: {(failed or run.stderr.strip())[-300:]}"
    job = scenario.job
    if isinstance(job, AccountSpec) and contender in dlt_source.CONTENDERS:
        return dlt_source.check(contender, job, out)
    if isinstance(job, AccountSpec):
        return _check_dataset(job, out) if contender == BATCH_EXPORT else None
    if contender == DLT:
        rows = ds.dataset(out / str(run.json_line()["table"]), format="parquet").count_rows()
    elif contender in (BATCH_EXPORT, PANDAS, COMPUTE):
        rows = pq.ParquetFile(out).metadata.num_rows
    else:
        return None
    return None if rows == job.items else f"wrote {rows} rows, expected {job.items}"


def _check_dataset(account: AccountSpec, dest: Path) -> str | None:
    """Every item of every job of the account in the synced dataset, each exactly once.

    Each job has its number of rows, its input_index within 0..n-1, and no (job_id,
    input_index) twice: so each item is there exactly once.
    """
    files = sorted(str(path) for path in (dest / "items").rglob("*.parquet"))
    if not files:
        return f"no item files under {dest / 'items'}"
    keys = ds.dataset(files, format="parquet").to_table(columns=["job_id", "input_index"])
    distinct = keys.group_by(["job_id", "input_index"]).aggregate([]).num_rows
    per_job = keys.group_by("job_id").aggregate(
        [("input_index", "count"), ("input_index", "min"), ("input_index", "max")]
    )
    found = {
        row["job_id"]: (row["input_index_count"], row["input_index_min"], row["input_index_max"])
        for row in per_job.to_pylist()
    }
    expected = {job: (n, 0, n - 1) for job, n in account.items_per_job().items()}
    wrong = [job for job in expected.keys() | found.keys() if found.get(job) != expected.get(job)]
    if wrong or distinct != keys.num_rows:
        return (
            f"wrote {keys.num_rows} rows ({distinct} distinct job_id, input_index) of "
            f"{len(found)} jobs; expected {sum(account.items_per_job().values())} rows of "
            f"{account.jobs} jobs, each once ({len(wrong)} jobs wrong, e.g. {sorted(wrong)[:1]})"
        )
    return None


def _measure_once(
    contender: str, scenario: Scenario, base_url: str, workdir: Path, concurrency: int
) -> tuple[measure.Run, str | None]:
    out = workdir / f"{scenario.name}-{contender.replace(' ', '-')}"
    if not (scenario.is_account or contender == DLT):
        out = out.with_suffix(".parquet")  # the others write a folder
    _remove(out)
    env = _env(SCRAPER_API_BASE_URL=base_url, GEONODE_SCRAPER_API_KEY=API_KEY)
    run = measure.run(_command(contender, scenario, base_url, out, concurrency), env=env)
    try:
        problem = _check(contender, scenario, run, out)
    except Exception as error:  # an unreadable output is a failed run, not a crashed bench
        problem = f"its output could not be read: {error!r}"[:300]
    _put_away(out, workdir)
    return run, problem


def _remove(out: Path) -> None:
    if out.is_dir():
        shutil.rmtree(out)
    else:
        out.unlink(missing_ok=True)


def _put_away(out: Path, workdir: Path) -> None:
    """Make room for the next run: a file is removed, a folder moved aside until the end.

    A synced dataset is thousands of files, and on a file system that checks for recently
    deleted inodes when it makes new ones (ext4 without a journal, as on the benchmark's
    machine: the check lasts from 30 s to five minutes after a deletion), removing it made
    the next contender's files slower to create: the next sync took 1.2 to 1.5 s longer, in
    system time (measured). A scheduled sync does not follow the deletion of thousands of
    files; its figure should not either. The folders go with the work folder at the end.
    """
    if not out.is_dir():
        out.unlink(missing_ok=True)
        return
    kept = workdir / "kept"
    kept.mkdir(exist_ok=True)
    out.rename(kept / f"{out.name}-{len(list(kept.iterdir()))}")


def execute(
    the_plan: Plan, *, log: bool = True
) -> tuple[dict[str, dict[str, Result]], dict[str, object]]:
    """Run every scenario's contenders; return the results by scenario and contender, and
    the decoders' and start-up figures."""
    results: dict[str, dict[str, Result]] = {
        s.name: {c: Result() for c in s.contenders} for s in the_plan.scenarios
    }
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        with _emulators(the_plan, workdir) as urls:
            for repetition in range(1, the_plan.repetitions + 1):
                for scenario in the_plan.scenarios:
                    for contender in scenario.contenders:
                        run, problem = _measure_once(
                            contender,
                            scenario,
                            urls[scenario.server],
                            workdir,
                            the_plan.concurrency_of(scenario),
                        )
                        _record(results[scenario.name][contender], contender, run, problem)
                        if log:
                            _log(
                                f"{repetition}/{the_plan.repetitions}",
                                scenario,
                                contender,
                                run,
                                problem,
                            )
            extras = _decoders(the_plan, urls[0.0, ""])
    extras["startup"] = _startup(the_plan.repetitions)
    return results, extras


def _record(result: Result, contender: str, run: measure.Run, problem: str | None) -> None:
    if problem is not None:
        result.errors.append(problem)
        return
    result.runs.append(run)
    if contender in (NETWORK, COMPUTE):
        result.timed.append(float(run.json_line()["seconds"]))


def _log(
    repetition: str, scenario: Scenario, contender: str, run: measure.Run, problem: str | None
) -> None:
    outcome = problem or f"{run.seconds:6.2f} s {run.peak_rss_mb:7.0f} MB"
    print(
        f"[{repetition}] {scenario.name:18s} {contender:14s} {outcome}",
        file=sys.stderr,
        flush=True,
    )


@contextmanager
def _emulators(the_plan: Plan, workdir: Path) -> Iterator[dict[tuple[float, str], str]]:
    """One emulator process per latency for the jobs, one per account; their URLs."""
    urls: dict[tuple[float, str], str] = {}
    servers = sorted({s.server for s in the_plan.scenarios} | {(0.0, "")})
    with ExitStack() as stack:
        for server in servers:
            names = {s.job.name for s in the_plan.scenarios if s.server == server}
            if server == (0.0, ""):
                names.add(the_plan.decoders_job.job_id)
            urls[server] = stack.enter_context(emulator(sorted(names), server[0], workdir))
        yield urls


def peer_versions() -> dict[str, str]:
    """The version of dlt in ``.venv-peers``, for the machine's list (empty without it)."""
    if not PEER_PYTHON.exists():
        return {}
    command = [str(PEER_PYTHON), "-c", "import importlib.metadata as m; print(m.version('dlt'))"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return {"dlt (.venv-peers)": done.stdout.strip() or "unknown"}


def _startup(repetitions: int) -> dict[str, float]:
    """The CLI's start-up alone: the interpreter and ``import batch_export.cli``."""
    runs = [
        measure.run([sys.executable, "-c", "import batch_export.cli"], env=_env())
        for _ in range(repetitions)
    ]
    return {
        "seconds": statistics.median(run.seconds for run in runs),
        "peak_rss_mb": statistics.median(run.peak_rss_mb for run in runs),
    }


def _decoders(the_plan: Plan, base_url: str) -> dict[str, object]:
    job = the_plan.decoders_job
    env = _env()
    command = [sys.executable, "-m", "bench.decoders", base_url, job.job_id, str(job.items)]
    run = measure.run(command, env=env)
    if run.exit_code != 0:
        return {"error": run.stderr.strip()[-300:]}
    return {"job": job.job_id, **run.json_line()}
