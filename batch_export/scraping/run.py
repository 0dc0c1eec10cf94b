"""One scrape, round by round: submit each batch once, export its job, resubmit what may pass.

:class:`ScrapeRun` takes the planned batches of the state file round by round. For each
round, a bounded pool gives every batch its job (:class:`~batch_export.scraping.submit.
Submitter`: recorded, found again, or newly submitted) and exports that job through the one
road (:func:`batch_export.pipeline.open_job`) into a part file beside the state, recorded
once written. A batch whose part is there is done: a rerun does nothing for it.

After a round, the lines whose last attempt failed with a code worth resubmitting (per
:mod:`batch_export.codes`), or was cancelled, become the next round's batches, recorded
before any is sent, up to ``resubmit`` rounds. A rerun continues the rounds the state file
holds.

How many batches are in flight at once comes from ``GET /v1/usage/concurrency`` (the plan's
free work slots) when it answers, else :data:`DEFAULT_AT_ONCE`.

On an error (a 402 among them) the run stops submitting at once: no new POST leaves, the
batches in flight finish their own step, the state keeps everything done. On Ctrl-C the jobs
keep running on the server (they are paid for) and the state is ready for a rerun, unless
``cancel_on_interrupt``, which cancels the jobs not exported yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field

import pyarrow as pa

from batch_export.atomic import atomic_output
from batch_export.connection import Connection
from batch_export.errors import ApiError
from batch_export.fetch.client import ApiClient
from batch_export.fetch.submit import cancel_batch, work_concurrency
from batch_export.pipeline import open_job
from batch_export.scraping.inputs import UrlInput
from batch_export.scraping.plan import BatchOptions, plan_batches
from batch_export.scraping.progress import ScrapeProgress
from batch_export.scraping.state import BatchRecord, ScrapeState
from batch_export.scraping.submit import Stopped, SubmitPolicy, Submitter
from batch_export.scraping.table import (
    ITEM_COLUMNS,
    STATUS_COLUMNS,
    batch_table,
    latest_rows,
    lines_tables,
    read_part,
    resubmittable_lines,
    scrape_schema,
)
from batch_export.writers.sink import write_batches

__all__ = ["DEFAULT_AT_ONCE", "MAX_AT_ONCE", "RunCounts", "ScrapeRun"]

DEFAULT_AT_ONCE = 4
MAX_AT_ONCE = 16


@dataclass
class RunCounts:
    """What one run did: POSTs sent, jobs found again after a lost answer, jobs exported."""

    posts: int = 0
    submitted: int = 0
    found_again: int = 0
    exported: int = 0
    cancelled: int = 0
    rounds: int = 0
    at_once: int = 0
    events: list[tuple[str, int]] = field(default_factory=list)


class ScrapeRun:
    """The rounds of one scrape over its state file (see the module docstring)."""

    def __init__(
        self,
        urls: UrlInput,
        state: ScrapeState,
        options: BatchOptions,
        connection: Connection,
        *,
        resubmit: int = 1,
        cancel_on_interrupt: bool = False,
        progress: ScrapeProgress | None = None,
        policy: SubmitPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.urls, self.state, self.options = urls, state, options
        self.connection = connection
        self.resubmit = resubmit
        self.cancel_on_interrupt = cancel_on_interrupt
        self.progress = progress or ScrapeProgress(enabled=False)
        self.counts = RunCounts()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client: ApiClient = connection.client(sleep=sleep)
        self._submitter = Submitter(
            self._client, state, urls, options, policy=policy, sleep=sleep, on_event=self._event
        )

    def run(self) -> None:
        """Every round: each batch's job made once and exported; then the resubmissions.

        The state stays held (no other run may take it) until :meth:`close`.
        """
        try:
            if self.state.rounds == 0:
                lines = self.urls.valid()
                self.state.add_round(
                    plan_batches(lines, batch_size=self.options.batch_size, round=0, first=1)
                )
            round = 0
            while True:
                self._run_round(round)
                self.counts.rounds = round + 1
                planned = round + 1 < self.state.rounds
                if not planned and not (round < self.resubmit and self._plan_next(round + 1)):
                    break
                round += 1
        finally:
            self.progress.close()
            self._client.close()

    def close(self) -> None:
        """Let another run take the state file."""
        self.state.close()

    def tables(self) -> Iterator[pa.Table]:
        """The table after :meth:`run`, in line order, one first-round batch at a time."""
        first = (
            (max(batch.lines), self._rows(batch, ITEM_COLUMNS))
            for batch in self.state.round_batches(0)
        )
        later = [self._rows(b, ITEM_COLUMNS) for b in self.state.batches if b.round > 0]
        return lines_tables(first, latest_rows(later), self.urls)

    def _plan_next(self, round: int) -> bool:
        """Plan the next round from the lines worth resubmitting; False when there are none."""
        rows = [self._rows(batch, STATUS_COLUMNS) for batch in self.state.batches]
        retry = set(resubmittable_lines(latest_rows(rows, scrape_schema(STATUS_COLUMNS))))
        if not retry:
            return False
        lines = [line for line in self.urls.lines if line.line in retry]
        first = 1 + max(batch.number for batch in self.state.batches)
        size = self.options.batch_size
        self.state.add_round(plan_batches(lines, batch_size=size, round=round, first=first))
        return True

    def _rows(self, batch: BatchRecord, columns: tuple[str, ...]) -> pa.Table:
        """One exported batch's rows, joined to its lines (see :func:`batch_table`)."""
        assert batch.part is not None, f"batch {batch.number} was not exported"
        part = read_part(self.state.parts_dir / batch.part, columns)
        return batch_table(part, batch, self._submitter.sent(batch), columns)

    # --- one round ----------------------------------------------------------------------------

    def _run_round(self, round: int) -> None:
        pending = [batch for batch in self.state.round_batches(round) if not self._done(batch)]
        if not pending:
            return
        at_once = self._at_once(len(pending))
        self.counts.at_once = max(self.counts.at_once, at_once)
        self.progress.start(batches=len(pending), items=sum(len(b.lines) for b in pending))
        pool = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="scrape")
        futures = [pool.submit(self._batch, batch) for batch in pending]
        try:
            self._wait_all(futures)
        except KeyboardInterrupt:
            self._stop.set()
            pool.shutdown(wait=False, cancel_futures=True)
            if self.cancel_on_interrupt:
                self._cancel_unexported()
            raise
        except BaseException:
            self._stop.set()  # no new POST leaves; what is in flight finishes its step
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _wait_all(self, futures: list[Future[None]]) -> None:
        left = set(futures)
        while left:
            # A bounded wait, so that Ctrl-C reaches this thread promptly.
            done, left = wait(left, timeout=0.5, return_when=FIRST_EXCEPTION)
            for future in done:
                # A batch that stopped because another failed: that other's error is raised.
                if not isinstance(future.exception(), Stopped):
                    future.result()

    def _at_once(self, pending: int) -> int:
        slots = work_concurrency(self._client)
        free = DEFAULT_AT_ONCE if slots is None else max(1, slots[1] - slots[0])
        return max(1, min(free, pending, MAX_AT_ONCE))

    def _done(self, batch: BatchRecord) -> bool:
        return batch.part is not None and (self.state.parts_dir / batch.part).exists()

    def _batch(self, batch: BatchRecord) -> None:
        try:
            self._submit_and_export(batch)
        except BaseException:
            self._stop.set()  # at once: no other worker sends a POST after this
            raise

    def _submit_and_export(self, batch: BatchRecord) -> None:
        job_id = self._submitter.job_for(batch, stop=self._stop)
        name = f"{batch.number:06d}-{job_id}.parquet"
        self.state.parts_dir.mkdir(exist_ok=True)
        with (
            open_job(
                job_id, connection=self.connection, client=self._client, count=False
            ) as stream,
            atomic_output(self.state.parts_dir / name, option="--state") as sink,
        ):
            rows = write_batches(stream, sink, format="parquet", job=stream.job)
        with self.state.changing():
            batch.part = name
        with self._lock:
            self.counts.exported += 1
        self.progress.batch_done(items=rows)

    def _cancel_unexported(self) -> None:
        """``DELETE`` the jobs of this run's batches that were not exported yet."""
        for batch in self.state.batches:
            if batch.job_id is not None and batch.part is None:
                with suppress(ApiError):
                    if cancel_batch(self._client, batch.job_id):
                        self.counts.cancelled += 1

    def _event(self, event: str, batch: BatchRecord) -> None:
        with self._lock:
            self.counts.events.append((event, batch.number))
            if event in ("posts", "submitted", "found_again"):
                setattr(self.counts, event, getattr(self.counts, event) + 1)
