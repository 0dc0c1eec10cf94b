"""batch-export as a dlt source: every finished job of an account, into any dlt destination.

:func:`batch_export_source` is a dlt source with two resources, ``items`` and ``jobs``;
:func:`batch_export_job` is the ``items`` resource of one job. Both take the one road
(:func:`batch_export.pipeline.open_job`): a job is read page by page and proven whole before
anything of it reaches dlt, as one Arrow table of :data:`~batch_export.schema.ITEM_SCHEMA`.

- ``items``: every item of every job. The schema goes to dlt as column hints (no type is
  inferred from values), the primary key is ``(job_id, input_index)`` and the merge key
  ``job_id``, written ``merge``/``delete-insert``: a job loaded again replaces all its rows.
  dlt merges Delta and Iceberg tables (its ``filesystem`` destination with
  ``table_format``) by ``upsert`` only; there the primary key alone replaces a job's rows,
  since a job's ``input_index`` values are its places in the submitted list.
- ``jobs``: one row per loaded job, the sync's jobs table
  (:data:`~batch_export.sync.layout.JOBS_SCHEMA`), merged on ``job_id``.

Incremental by dlt state: the source records, per table, the digest of each job as listed
when it was loaded, and the next run reads only the jobs that are new or changed, by the
sync's own rule (:func:`batch_export.sync.plan.plan_sync`). A job that cannot be loaded (not
proven whole, an answer for another job, a listing entry that cannot be used) is left out
and not recorded, so that the next run reads it again; the others load. Its error, in our
words, goes to dlt's logger and to the source state; :func:`raise_for_failures` raises
:class:`~batch_export.errors.SyncIncomplete` (exit 10) after such a run, for schedulers. (dlt
extracts a source all or nothing: an exception raised inside a resource would throw away the
other jobs of the run.)

The API key is the ``api_key`` option, else dlt's secret ``sources.batch_export.api_key``
(``.dlt/secrets.toml`` or ``SOURCES__BATCH_EXPORT__API_KEY``), else
``GEONODE_SCRAPER_API_KEY``. It never reaches dlt's state, traces or logs.

Example (against the bundled emulator, into a DuckDB file; docs/dlt.md has more):

    >>> import tempfile
    >>> from batch_export.testing import Emulator, generate_account
    >>> dlt.config["runtime.dlthub_telemetry"] = False  # nothing leaves the machine
    >>> work = tempfile.mkdtemp()
    >>> with Emulator(jobs=generate_account(jobs=5, processing=1), api_key="k") as emu:
    ...     pipeline = dlt.pipeline("scraper_jobs", pipelines_dir=work,
    ...                             destination=dlt.destinations.duckdb(f"{work}/w.duckdb"))
    ...     info = pipeline.run(batch_export_source(base_url=emu.base_url, api_key="k"))
    >>> raise_for_failures(pipeline)  # no job was left out
    >>> len(pipeline.state["sources"]["batch_export"]["loaded"]["items"])
    4
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Literal, TypedDict, Unpack

import dlt
import pyarrow as pa
from dlt.common import logger
from dlt.common.libs.pyarrow import py_arrow_to_table_schema_columns
from dlt.common.schema.typing import (
    TDeleteInsertStrategyDict,
    TTableSchemaColumns,
    TUpsertStrategyDict,
)
from dlt.extract import DltResource

from batch_export.connection import Connection, ConnectionOptions
from batch_export.errors import (
    BatchExportError,
    InvalidInputError,
    ResponseShapeError,
    SyncIncomplete,
)
from batch_export.fetch.client import ApiClient
from batch_export.job import JobStatus
from batch_export.pipeline import open_job
from batch_export.schema import ITEM_SCHEMA
from batch_export.sync.layout import JOBS_SCHEMA, job_row
from batch_export.sync.listing import ListedJob, TimeWindow, iter_account_jobs, parse_when
from batch_export.sync.plan import Plan, plan_sync
from batch_export.sync.report import utc_now
from batch_export.sync.run import default_jobs
from batch_export.text import printable
from batch_export.version import __version__

__all__ = [
    "API_KEY_SECRET",
    "ITEMS",
    "JOBS",
    "SECTION",
    "batch_export_job",
    "batch_export_source",
    "failed_jobs",
    "raise_for_failures",
    "table_hints",
]

SECTION = "batch_export"  # the source's name, its config section and its key in dlt's state
API_KEY_SECRET = f"sources.{SECTION}.api_key"
ITEMS = "items"
JOBS = "jobs"
TableFormat = Literal["delta", "iceberg"]

# The tables as dlt gets them: the output schemas with their keys not nullable (dlt's
# primary keys are not null, and a nullable Arrow field would differ from the hint).
KEYS: dict[str, tuple[str, ...]] = {ITEMS: ("job_id", "input_index"), JOBS: ("job_id",)}
SCHEMAS: dict[str, pa.Schema] = {
    name: pa.schema(
        [f.with_nullable(False) if f.name in KEYS[name] else f for f in schema],
        metadata=schema.metadata,
    )
    for name, schema in ((ITEMS, ITEM_SCHEMA), (JOBS, JOBS_SCHEMA))
}


class TableHints(TypedDict, total=False):
    """The dlt hints of ``items`` or ``jobs``, as :meth:`DltResource.apply_hints` takes them."""

    columns: TTableSchemaColumns
    primary_key: list[str]
    merge_key: str
    write_disposition: TDeleteInsertStrategyDict | TUpsertStrategyDict
    table_format: TableFormat


def table_hints(table: str, *, table_format: TableFormat | None = None) -> TableHints:
    """How ``items`` or ``jobs`` is written: its columns, keys and merge strategy.

    >>> table_hints(ITEMS)["write_disposition"]
    {'disposition': 'merge', 'strategy': 'delete-insert'}
    >>> table_hints(ITEMS, table_format="delta")["write_disposition"]["strategy"]
    'upsert'
    >>> list(table_hints(JOBS)["columns"])[:2]
    ['job_id', 'status']
    """
    hints: TableHints = {
        "columns": py_arrow_to_table_schema_columns(SCHEMAS[table]),
        "primary_key": list(KEYS[table]),
    }
    if table_format is None:
        # Every row of a job loaded again goes, whatever its input_index: the merge key.
        hints["merge_key"] = "job_id"
        hints["write_disposition"] = TDeleteInsertStrategyDict(
            disposition="merge", strategy="delete-insert"
        )
    else:
        hints["write_disposition"] = TUpsertStrategyDict(disposition="merge", strategy="upsert")
        hints["table_format"] = table_format
    return hints


@dataclass(frozen=True, kw_only=True)
class _Loaded:
    """A job proven whole: its items and its jobs row, as dlt takes them."""

    listed: ListedJob
    items: pa.Table
    jobs_row: pa.Table


@dataclass(frozen=True, kw_only=True)
class _Failed:
    """A job left out of this run, and why, in our words (the key hidden)."""

    job_id: str
    error: str
    message: str
    exit_code: int

    @classmethod
    def of(cls, job_id: str, error: BatchExportError, client: ApiClient) -> _Failed:
        message = " ".join(client.redact(error.message).split())
        return cls(
            job_id=job_id, error=type(error).__name__, message=message, exit_code=error.exit_code
        )


@dlt.source(name=SECTION, section=SECTION, max_table_nesting=0)
def batch_export_source(
    since: str | None = None,
    until: str | None = None,
    *,
    limit: int | None = None,
    jobs: int | None = None,
    table_format: TableFormat | None = None,
    **options: Unpack[ConnectionOptions],
) -> list[DltResource]:
    """Every finished job of the account that dlt's state does not hold as it is now.

    ``since`` (inclusive) and ``until`` (exclusive) bound the jobs' ``created_at`` (an ISO date
    or datetime, UTC unless an offset is given); ``limit`` caps the jobs loaded in one run,
    oldest first; ``jobs`` are read at once (default: the ``concurrency``), each held in memory
    until dlt takes it. ``table_format`` is ``"delta"`` or ``"iceberg"`` for dlt's
    ``filesystem`` destination. ``options`` are those of
    :class:`~batch_export.connection.Connection` (``base_url``, ``api_key``, ``page_size``...).

    Example::

        lake = dlt.pipeline("scraper_jobs", destination="filesystem", dataset_name="scraper")
        lake.run(batch_export_source(since="2026-05-01", table_format="delta"))
    """
    if (jobs is not None and jobs < 1) or (limit is not None and limit < 0):
        raise InvalidInputError("jobs must be at least 1 and limit at least 0.")
    connection = _connection(options)
    window = TimeWindow(
        since=None if since is None else parse_when(since, option="since"),
        until=None if until is None else parse_when(until, option="until"),
    )
    read = dlt.resource(
        _read_account(connection, window, limit=limit, workers=jobs or default_jobs(connection)),
        name="read_jobs",
        selected=False,
    )
    tables = []
    for table in (ITEMS, JOBS):
        resource = dlt.transformer(_handed(table), data_from=read, name=table)()
        tables.append(resource.apply_hints(**table_hints(table, table_format=table_format)))
    return tables


def batch_export_job(
    job_id: str, *, table_format: TableFormat | None = None, **options: Unpack[ConnectionOptions]
) -> DltResource:
    """The ``items`` of one job: one Arrow table, once the job is finished and proven whole.

    Waits for the job as ``batch-export export`` does (``wait``, ``timeout``), with the
    ``options`` of :class:`~batch_export.connection.Connection`. Loaded again, the job
    replaces its rows. No state: every run reads the job.

    Example::

        pipeline = dlt.pipeline("one_job", destination="duckdb", dataset_name="scraper")
        pipeline.run(batch_export_job("9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019"))
    """
    connection = _connection(options)

    def items() -> Iterator[pa.Table]:
        yield _read_job(job_id, connection=connection)[1]

    resource = dlt.resource(items(), name=ITEMS, max_table_nesting=0, section=SECTION)
    return resource.apply_hints(**table_hints(ITEMS, table_format=table_format))


def failed_jobs(pipeline: dlt.Pipeline) -> dict[str, dict[str, Any]]:
    """The jobs that the pipeline's last run of the source left out: error, message, exit code.

    They are read again by the next run; a job that loads leaves this list.

    Example::

        failed_jobs(pipeline)
        # {'job-03': {'error': 'IncompleteResultsError', 'message': '...', 'exit_code': 6}}
    """
    state = pipeline.state.get("sources", {}).get(SECTION, {})
    return {job_id: dict(failure) for job_id, failure in state.get("failed", {}).items()}


def raise_for_failures(pipeline: dlt.Pipeline) -> None:
    """Raise :class:`~batch_export.errors.SyncIncomplete` (exit 10) when the pipeline's last
    run of the source left jobs out; for a scheduler's task to fail after the others loaded.

    Example::

        pipeline.run(batch_export_source())
        raise_for_failures(pipeline)  # SyncIncomplete: Job job-03 was not loaded by ...
    """
    failed = sorted(failed_jobs(pipeline).items())
    if not failed:
        return
    first_id, first = failed[0]
    more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
    raise SyncIncomplete(
        f"Job {printable(first_id)}{more} was not loaded by dlt pipeline "
        f"{pipeline.pipeline_name}: {first['message']} The others were; the next run reads "
        "the jobs left out again.",
        failed_jobs=tuple(job_id for job_id, _ in failed),
    )


def _connection(options: Mapping[str, Any]) -> Connection:
    """The connection the options describe; the key from dlt's secrets when not given."""
    unknown = sorted(set(options) - set(ConnectionOptions.__annotations__))
    if unknown:
        raise InvalidInputError(f"Unknown connection option(s): {', '.join(unknown)}.")
    # Looked up as a secret (dlt's default type for dlt.secrets): dlt's trace keeps no value.
    api_key = options.get("api_key") or dlt.secrets.get(API_KEY_SECRET)
    return Connection(**{**options, "api_key": None if api_key is None else str(api_key)})


def _handed(table: str) -> Callable[[_Loaded], Iterator[pa.Table]]:
    """The transformer of ``table``: hands on a loaded job's rows, and records the job."""

    def hand(load: _Loaded) -> Iterator[pa.Table]:
        yield load.items if table == ITEMS else load.jobs_row
        # Recorded with the rows in the same load package: dlt commits both or neither.
        loaded = dlt.current.source_state().setdefault("loaded", {})
        loaded.setdefault(table, {})[load.listed.job_id] = load.listed.token

    return hand


def _read_account(
    connection: Connection, window: TimeWindow, *, limit: int | None, workers: int
) -> Iterator[_Loaded]:
    """List the account, plan by dlt's state, read the planned jobs; record who failed."""
    state = dlt.current.source_state()
    selected = [name for name in (ITEMS, JOBS) if name in dlt.current.source().selected_resources]
    failed: dict[str, dict[str, Any]] = {}
    state["failed"] = failed
    with connection.client() as client:
        listed = list(iter_account_jobs(client, concurrency=connection.concurrency))
        plan = _plan(listed, state.get("loaded", {}), selected, window=window, limit=limit)
        for job in plan.unusable:
            _record(failed, _Failed.of(job.job_id, ResponseShapeError(str(job.problem)), client))
        for outcome in _read_all(plan, client=client, connection=connection, workers=workers):
            if isinstance(outcome, _Failed):
                _record(failed, outcome)
            else:
                yield outcome


def _plan(
    listed: list[ListedJob],
    loaded: Mapping[str, Mapping[str, str]],
    selected: Sequence[str],
    *,
    window: TimeWindow,
    limit: int | None,
) -> Plan:
    """The sync's plan, from what dlt's state says every selected table holds."""
    tables = [loaded.get(name, {}) for name in selected]
    recorded: dict[str, set[str]] = {}
    for job in listed:
        tokens = [table.get(job.job_id) for table in tables]
        if tables and all(tokens):
            recorded[job.job_id] = {str(token) for token in tokens}
    return plan_sync(listed, recorded=recorded, whole=set(recorded), window=window, limit=limit)


def _read_all(
    plan: Plan, *, client: ApiClient, connection: Connection, workers: int
) -> Iterator[_Loaded | _Failed]:
    """Every planned job, read ``workers`` at a time, in the order they finish."""
    todo = iter(plan.to_export)
    pending: set[Future[_Loaded | _Failed]] = set()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch-export-dlt")
    try:
        while True:
            for planned in todo:
                pending.add(pool.submit(_read_guarded, planned.job, client, connection))
                if len(pending) >= workers:
                    break
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in done)
    finally:
        # dlt closes this generator when the run fails: jobs not started yet are dropped.
        pool.shutdown(wait=True, cancel_futures=True)


def _read_guarded(
    listed: ListedJob, client: ApiClient, connection: Connection
) -> _Loaded | _Failed:
    """One job, or why it cannot be loaded; only our own errors are a job's failure."""
    try:
        job, items = _read_job(listed.job_id, connection=connection, client=client)
        row = job_row(
            job,
            rows=items.num_rows,
            exported_at=utc_now(),
            tool_version=__version__,
            created_at=listed.created_at,
        )
    except BatchExportError as error:
        return _Failed.of(listed.job_id, error, client)
    return _Loaded(listed=listed, items=items, jobs_row=row.cast(SCHEMAS[JOBS]))


def _read_job(
    job_id: str, *, connection: Connection, client: ApiClient | None = None
) -> tuple[JobStatus, pa.Table]:
    """One job as one table, once its pages are proven whole: with ``client`` (the account's),
    a job listed as finished; without, any job, waited for."""
    with open_job(
        job_id,
        connection=connection,
        client=client,
        assume_finished=client is not None,
        count=False,
    ) as stream:
        items = pa.Table.from_batches(list(stream), schema=ITEM_SCHEMA)
    return stream.job, items.cast(SCHEMAS[ITEMS])


def _record(failed: dict[str, dict[str, Any]], outcome: _Failed) -> None:
    failed[outcome.job_id] = {
        "error": outcome.error,
        "message": outcome.message,
        "exit_code": outcome.exit_code,
    }
    logger.error(f"batch-export: job {printable(outcome.job_id)} not loaded: {outcome.message}")
