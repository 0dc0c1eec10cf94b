"""From a list of URLs to a proven table: the entries of ``batch-export scrape`` and the notebook.

:func:`scrape_to_file` is the command: read and check the URLs, plan the batches, run them
(:class:`~batch_export.scraping.run.ScrapeRun`: each batch submitted exactly once, its job
exported through the one road, passing failures resubmitted) and write one table with one
row per input line, atomically. :func:`scrape` does the same and returns the table as a typed
DataFrame. :func:`plan` is ``--dry-run``: what would be sent and what it may cost, with
nothing submitted and no file written.

Example (against the bundled emulator):

    >>> import pathlib, tempfile
    >>> from batch_export.testing import Emulator
    >>> from batch_export.testing.submit import SubmitSettings
    >>> urls = [f"https://a.example/{n}" for n in range(30)] + ["not a url"]
    >>> settings = SubmitSettings(processing_polls=0, failure_rate=0)
    >>> with Emulator(api_key="k", submit=settings) as emu:
    ...     out = pathlib.Path(tempfile.mkdtemp()) / "pages.parquet"
    ...     report = scrape_to_file(urls, out, base_url=emu.base_url, api_key="k")
    >>> report.rows, report.by_status["invalid"], report.submitted
    (31, 1, 1)
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Unpack

import pyarrow as pa
import pyarrow.compute as pc

from batch_export.atomic import atomic_output, check_writable
from batch_export.connection import Connection, ConnectionOptions
from batch_export.schema import SCRAPE_SCHEMA
from batch_export.scraping.inputs import UrlInput, read_urls
from batch_export.scraping.plan import BatchOptions, plan_batches
from batch_export.scraping.progress import ScrapeProgress
from batch_export.scraping.run import RunCounts, ScrapeRun
from batch_export.scraping.state import ScrapeState, default_state_path
from batch_export.scraping.submit import SubmitPolicy
from batch_export.text import figure
from batch_export.writers import check_options, open_writer, resolve_format

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DryRun", "ScrapeReport", "plan", "scrape", "scrape_to_file"]

Urls = str | os.PathLike[str] | Iterable[str]


@dataclass(frozen=True)
class ScrapeReport:
    """What a scrape did and what its table holds."""

    lines: int
    valid: int
    invalid: int
    duplicates: int
    batches: int
    rows: int
    by_status: dict[str, int]
    charged: int
    posts: int
    submitted: int
    found_again: int
    rounds: int
    at_once: int
    output: str | None
    state: str

    def to_text(self) -> str:
        """The report for people, a few lines."""
        statuses = ", ".join(
            f"{figure(n)} {status}" for status, n in sorted(self.by_status.items())
        )
        return (
            f"{figure(self.rows)} rows, one per input line ({statuses}).\n"
            f"{_count(self.batches, 'batch', 'batches')} in {_count(self.rounds, 'round')}; "
            f"this run sent {_count(self.posts, 'POST')}, made {_count(self.submitted, 'job')} "
            f"and found {figure(self.found_again)} again after a lost answer.\n"
            f"Requests charged for these rows: {figure(self.charged)}.\n"
            f"State: {self.state}\n"
        )


@dataclass(frozen=True)
class DryRun:
    """What ``--dry-run`` says: the counts, the batches, and the most it may cost."""

    counts: dict[str, int]
    batches: int
    batch_size: int
    submitted: int = 0
    state: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        """One paragraph."""
        c = self.counts
        text = (
            f"{figure(c['lines'])} lines: {figure(c['valid'])} URLs to send "
            f"({figure(c['duplicates'])} repeated), {figure(c['invalid'])} invalid; "
            f"{_count(self.batches, 'batch', 'batches')} of up to {figure(self.batch_size)}; "
            f"at most {figure(c['valid'])} requests charged (one per URL extracted: failures "
            "are not charged, and a resubmitted line only once it succeeds). Nothing was "
            "submitted.\n"
        )
        if self.state is not None:
            text += (
                f"{self.submitted} of {_count(self.batches, 'batch', 'batches')} already have "
                f"a job ({self.state}).\n"
            )
        return text


def _count(number: int, one: str, many: str | None = None) -> str:
    """``3 batches``, ``1 batch``: a figure and its noun."""
    return f"{figure(number)} {one if number == 1 else many or one + 's'}"


def plan(
    urls: Urls,
    *,
    options: BatchOptions | None = None,
    state_path: str | os.PathLike[str] | None = None,
) -> DryRun:
    """What a scrape of ``urls`` would send and cost; nothing is submitted or written."""
    options = options or BatchOptions()
    read = read_urls(urls)
    batches = plan_batches(read.valid(), batch_size=options.batch_size, round=0, first=1)
    submitted, shown = 0, None
    if state_path is not None and Path(state_path).exists():
        state = ScrapeState.open(state_path, urls=read, options=options, hold=False)
        submitted = sum(1 for batch in state.round_batches(0) if batch.job_id is not None)
        shown = str(state_path)
    return DryRun(read.counts(), len(batches), options.batch_size, submitted, shown)


def scrape_to_file(
    urls: Urls,
    output: str | os.PathLike[str],
    *,
    format: str | None = None,
    escape_formulas: bool = False,
    state_path: str | os.PathLike[str] | None = None,
    options: BatchOptions | None = None,
    resubmit: int = 1,
    cancel_on_interrupt: bool = False,
    connection: Connection | None = None,
    progress: ScrapeProgress | None = None,
    policy: SubmitPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    **connection_options: Unpack[ConnectionOptions],
) -> ScrapeReport:
    """Scrape ``urls`` (a file of one URL a line, ``-``, or the URLs) into the table at
    ``output``, one row per input line, written atomically. The state file (default: beside
    the output, ``<output>.scrape.json``) makes a rerun continue without paying twice."""
    fmt = resolve_format(output, format)
    check_options(fmt, escape_formulas=escape_formulas)
    check_writable(output)
    state_path = state_path or default_state_path(output)
    run = _run(
        urls,
        state_path,
        options,
        resubmit,
        cancel_on_interrupt,
        connection or Connection(**connection_options),
        progress,
        policy,
        sleep,
    )
    tally = _Tally()
    try:
        # One first-round batch's rows at a time, in line order: never the whole table.
        with atomic_output(output) as sink:
            writer = open_writer(fmt, sink, escape_formulas=escape_formulas, schema=SCRAPE_SCHEMA)
            try:
                for table in run.tables():
                    tally.add(table)
                    for batch in table.to_batches(max_chunksize=10_000):
                        writer.write(batch)
            finally:
                writer.close()
    finally:
        run.close()
    return _report(tally, run, output=str(output))


def scrape(
    urls: Urls,
    *,
    state_path: str | os.PathLike[str] | None = None,
    formats: Iterable[str] = ("markdown",),
    render_js: bool = False,
    proxy_country: str | None = None,
    proxy_type: str | None = None,
    headers: Mapping[str, str] | None = None,
    batch_size: int = 1000,
    resubmit: int = 1,
    cancel_on_interrupt: bool = False,
    progress: bool | None = True,
    **connection_options: Unpack[ConnectionOptions],
) -> pd.DataFrame:
    """Scrape ``urls`` and return the table as a DataFrame, one row per input line.

    The columns are ``line``, the export's columns (of each line's last attempt) and
    ``attempts``, with Arrow-backed dtypes; ``df.attrs["scrape"]`` holds the report. Each
    batch is submitted exactly once: the state file (default ``scrape-<digest>.scrape.json``
    in the current folder, named after the URLs) lets the same call, run again, continue
    without paying twice. Connection options as :func:`batch_export.read_job`.
    """
    import pandas as pd

    options = BatchOptions(
        formats=tuple(formats),
        render_js=render_js,
        proxy_country=proxy_country,
        proxy_type=proxy_type,
        headers=headers,
        batch_size=batch_size,
    )
    read = read_urls(urls)
    state_path = state_path or Path.cwd() / f"scrape-{read.digest[:12]}.scrape.json"
    run = _run(
        read,
        state_path,
        options,
        resubmit,
        cancel_on_interrupt,
        Connection(**connection_options),
        ScrapeProgress(enabled=progress),
        None,
        time.sleep,
    )
    tally = _Tally()
    try:
        tables = [tally.add(table) for table in run.tables()]
    finally:
        run.close()
    table = pa.concat_tables(tables) if tables else SCRAPE_SCHEMA.empty_table()
    frame: pd.DataFrame = table.to_pandas(types_mapper=pd.ArrowDtype)
    frame.attrs["scrape"] = _report(tally, run, output=None).__dict__
    return frame


def _run(
    urls: Urls | UrlInput,
    state_path: str | os.PathLike[str],
    options: BatchOptions | None,
    resubmit: int,
    cancel_on_interrupt: bool,
    connection: Connection,
    progress: ScrapeProgress | None,
    policy: SubmitPolicy | None,
    sleep: Callable[[float], None],
) -> ScrapeRun:
    """The run of every round, done; its state still held (the caller closes it)."""
    from batch_export.errors import InvalidInputError

    if not isinstance(resubmit, int) or not 0 <= resubmit <= 10:
        raise InvalidInputError(f"--resubmit must be between 0 and 10, got {resubmit!r}.")
    options = options or BatchOptions()
    read = urls if isinstance(urls, UrlInput) else read_urls(urls)
    state = ScrapeState.open(state_path, urls=read, options=options)
    run = ScrapeRun(
        read,
        state,
        options,
        connection,
        resubmit=resubmit,
        cancel_on_interrupt=cancel_on_interrupt,
        progress=progress,
        policy=policy,
        sleep=sleep,
    )
    try:
        run.run()
    except BaseException:
        run.close()
        raise
    return run


@dataclass
class _Tally:
    """What the table holds, counted as its chunks go by."""

    rows: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    charged: int = 0

    def add(self, table: pa.Table) -> pa.Table:
        self.rows += table.num_rows
        self.statuses.update(table.column("status").to_pylist())
        self.charged += pc.sum(table.column("tokens_charged")).as_py() or 0
        return table


def _report(tally: _Tally, run: ScrapeRun, *, output: str | None) -> ScrapeReport:
    counts: RunCounts = run.counts
    read = run.urls.counts()
    return ScrapeReport(
        lines=read["lines"],
        valid=read["valid"],
        invalid=read["invalid"],
        duplicates=read["duplicates"],
        batches=len(run.state.batches),
        rows=tally.rows,
        by_status={str(status): n for status, n in tally.statuses.items()},
        charged=tally.charged,
        posts=counts.posts,
        submitted=counts.submitted,
        found_again=counts.found_again,
        rounds=run.state.rounds,
        at_once=counts.at_once,
        output=output,
        state=str(run.state.path),
    )
