"""Jobs and exports as typed pandas DataFrames, for notebooks; one call each.

:func:`read_job` reads a whole job into a DataFrame; :func:`read_jobs` several into one;
:func:`iter_batches` yields Arrow record batches for memory-bounded work; :func:`read_export`
reads a Parquet, CSV or JSONL export back; :func:`summarize` computes the
:class:`~batch_export.summary.counts.Summary` of rows already in hand.

Every frame has the columns of :data:`~batch_export.schema.ITEM_SCHEMA`, in its order, with
Arrow-backed dtypes (:class:`pandas.ArrowDtype`), so nothing is lost on the way: ``input_index``
is ``int64[pyarrow]`` and ``http_status`` ``int32[pyarrow]`` even with nulls, text is
``string[pyarrow]`` (``large_string[pyarrow]`` for ``markdown`` and ``html``), ``links`` is
``list<item: string>[pyarrow]``, and null stays distinct from the empty string.

The job's status, counters, tokens and settings travel in ``df.attrs["job"]`` and the
summary in ``df.attrs["summary"]``, both as JSON-ready dicts, so that pandas can copy them
along and ``df.to_parquet`` can store them. pandas (imported on first use, so that the CLI
starts quickly) keeps them through most operations (filtering, ``head``, ``copy``); a concat of
frames of different jobs drops them.

Example (against the bundled emulator):

    >>> from batch_export.testing import Emulator, generate_job
    >>> with Emulator(jobs=[generate_job(job_id="j1", items=30)], api_key="k") as emu:
    ...     df = read_job("j1", base_url=emu.base_url, api_key="k", progress=False)
    >>> len(df), str(df["input_index"].dtype), df.attrs["job"]["status"]
    (30, 'int64[pyarrow]', 'completed')
"""

from __future__ import annotations

import json
import os
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Unpack

import pyarrow as pa
import pyarrow.compute as pc

from batch_export.connection import Connection, ConnectionOptions
from batch_export.errors import InvalidInputError
from batch_export.fetch.job_id import check_job_id
from batch_export.job import JobStatus
from batch_export.pipeline import open_job
from batch_export.schema import ITEM_SCHEMA, job_header
from batch_export.summary.counts import Summary, SummaryBuilder
from batch_export.summary.progress import Progress
from batch_export.writers.readback import PANDAS_ATTRS, export_format, read_export_table

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["iter_batches", "read_export", "read_export_table", "read_job", "read_jobs", "summarize"]

# The columns SummaryBuilder reads; the others may be dropped from a frame before summarize().
_SUMMARY_COLUMNS = (
    "job_id", "url", "status", "error_code", "error_message",
    "http_status", "duration_ms", "retry_count", "tokens_charged",
)  # fmt: skip


def read_job(
    job_id: str,
    *,
    progress: bool | None = True,
    **options: Unpack[ConnectionOptions],
) -> pd.DataFrame:
    """Every item of ``job_id`` as a DataFrame, one row per item, in ``input_index`` order.

    Waits for the job to finish like the CLI (``wait``, ``timeout``), reads every page and
    proves the result whole. ``base_url`` and ``api_key`` default to ``SCRAPER_API_BASE_URL``
    and ``GEONODE_SCRAPER_API_KEY``. ``progress`` True shows bars (a widget in Jupyter),
    None shows them only on a terminal or in a notebook, False never.

    >>> from batch_export.testing import Emulator, generate_job
    >>> with Emulator(jobs=[generate_job(job_id="j1", items=5)], api_key="k") as emu:
    ...     df = read_job("j1", base_url=emu.base_url, api_key="k", progress=False)
    >>> df.columns[:3].tolist(), df.attrs["summary"]["rows"]
    (['job_id', 'input_index', 'url'], 5)
    """
    connection = Connection(**options)
    table, job, summary = _read_table(job_id, connection, Progress(enabled=progress))
    frame = _to_frame(table)
    frame.attrs["job"] = job.to_dict()
    frame.attrs["summary"] = summary.to_dict()
    return frame


def read_jobs(
    job_ids: Iterable[str],
    *,
    progress: bool | None = True,
    **options: Unpack[ConnectionOptions],
) -> pd.DataFrame:
    """The items of several jobs in one DataFrame, job after job; options as :func:`read_job`.

    ``df.attrs["jobs"]`` and ``df.attrs["summaries"]`` map each job id to its figures.

    >>> from batch_export.testing import Emulator, generate_job
    >>> jobs = [generate_job(job_id="a", items=3), generate_job(job_id="b", items=4)]
    >>> with Emulator(jobs=jobs, api_key="k") as emu:
    ...     df = read_jobs(["a", "b"], base_url=emu.base_url, api_key="k", progress=False)
    >>> df.groupby("job_id").size().to_dict(), sorted(df.attrs["summaries"])
    ({'a': 3, 'b': 4}, ['a', 'b'])
    """
    # Canonical before the road, so that one job given in two forms counts as given twice.
    ids = [check_job_id(job_id) for job_id in job_ids]
    repeated = sorted({job_id for job_id in ids if ids.count(job_id) > 1})
    if repeated:
        raise InvalidInputError(
            f"Job ids given more than once: {', '.join(repeated)}; each job is read once."
        )
    connection = Connection(**options)
    tables, jobs, summaries = [], {}, {}
    for job_id in ids:
        table, job, summary = _read_table(job_id, connection, Progress(enabled=progress))
        tables.append(table)
        jobs[job_id], summaries[job_id] = job.to_dict(), summary.to_dict()
    frame = _to_frame(pa.concat_tables(tables) if tables else ITEM_SCHEMA.empty_table())
    frame.attrs["jobs"], frame.attrs["summaries"] = jobs, summaries
    return frame


def iter_batches(
    job_id: str,
    *,
    progress: bool | None = True,
    **options: Unpack[ConnectionOptions],
) -> Iterator[pa.RecordBatch]:
    """Yield the job's items as Arrow record batches of the item schema, in page order.

    Pages are joined into batches of up to about 2,000 rows; only a few are held at a time,
    whatever the job's size. Options as :func:`read_job`. A bad job id or base URL is
    reported at once, the API's answers as you iterate.

    >>> from batch_export.testing import Emulator, generate_job
    >>> with Emulator(jobs=[generate_job(job_id="j1", items=120)], api_key="k") as emu:
    ...     batches = iter_batches("j1", base_url=emu.base_url, api_key="k", progress=False)
    ...     [batch.num_rows for batch in batches]
    [120]
    """
    connection = Connection(**options)
    job_id = check_job_id(job_id)  # now, not at the first next(); the road checks it again
    # Built now, so that a bad base URL or key is reported before the first next().
    connection.client().close()
    return _stream(job_id, connection, Progress(enabled=progress))


def read_export(path: str | os.PathLike[str], *, format: str | None = None) -> pd.DataFrame:
    """Read a Parquet, CSV or JSONL export back, with the same dtypes as :func:`read_job`.

    The format comes from ``format`` or the path's extension. CSV's empty field is null and
    its ``""`` the empty string; its JSON-encoded ``links`` become lists again. A CSV written
    with ``escape_formulas`` keeps the ``'`` prefixes it added. A frame you saved with
    ``df.to_parquet(path)`` reads back whole, ``df.attrs`` included (``pd.read_parquet``
    cannot rebuild the ``links`` dtype without ``dtype_backend="pyarrow"``).

    >>> import pathlib, tempfile, pandas as pd
    >>> from batch_export.schema import COLUMN_NAMES
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "items.csv"
    >>> _ = path.write_text(",".join(COLUMN_NAMES) + '\\nj1,0,https://a.test/,completed,,,""'
    ...                     + ',,"[""https://b.test/""]",200,5,0,1,\\n')
    >>> row = read_export(path).iloc[0]
    >>> row["markdown"], row["html"] is pd.NA, list(row["links"])
    ('', True, ['https://b.test/'])
    """
    table = read_export_table(path, format=format)
    frame = _to_frame(table)
    attrs = (table.schema.metadata or {}).get(PANDAS_ATTRS)
    if attrs is not None:
        frame.attrs = json.loads(attrs)
    return frame


def summarize(
    df_or_path: pd.DataFrame | str | os.PathLike[str], *, format: str | None = None
) -> Summary:
    """The :class:`~batch_export.summary.counts.Summary` of a frame's rows, or of an export file.

    A frame from :func:`read_job` lends its job's status and tokens (``df.attrs["job"]``) to
    the summary, also after filtering; a file or any other frame gives the rows' figures only.

    >>> import pyarrow as pa
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> rows = [{"job_id": "j1", "status": "completed"},
    ...         {"job_id": "j1", "status": "failed", "error_code": "http_403"}]
    >>> df = pa.Table.from_pylist(rows, schema=ITEM_SCHEMA).to_pandas()
    >>> summary = summarize(df)
    >>> summary.rows, summary.failure_codes
    (2, {'http_403': 1})
    """
    if isinstance(df_or_path, str | os.PathLike):
        table = read_export_table(df_or_path, format=format)
        output = {"path": str(df_or_path), "format": export_format(df_or_path, format)}
        # A Parquet export carries its job's header: the summary gets the job's own figures.
        header = job_header(table.schema.metadata)
        return _summary_of(table, job=_job_from(header), output=output)
    table = _from_frame(df_or_path)
    return _summary_of(table, job=_job_from_attrs(df_or_path.attrs, table), output={})


def _read_table(
    job_id: str, connection: Connection, bar: Progress
) -> tuple[pa.Table, JobStatus, Summary]:
    with open_job(job_id, connection=connection, progress=bar) as stream:
        table = pa.Table.from_batches(list(stream), schema=ITEM_SCHEMA)
    return table, stream.job, stream.summary()


def _stream(job_id: str, connection: Connection, bar: Progress) -> Iterator[pa.RecordBatch]:
    with open_job(job_id, connection=connection, progress=bar) as stream:
        yield from stream


def _to_frame(table: pa.Table) -> pd.DataFrame:
    import pandas as pd

    # ArrowDtype for every column: nullable integers stay integers, lists stay lists, and
    # string columns keep null apart from "" (NumPy-backed conversion would lose all three).
    frame: pd.DataFrame = table.to_pandas(types_mapper=pd.ArrowDtype)
    return frame


def _from_frame(frame: pd.DataFrame) -> pa.Table:
    missing = [name for name in _SUMMARY_COLUMNS if name not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"Cannot summarize a frame without the column(s) {', '.join(missing)}: keep the "
            "columns of read_job() or read_export() that a summary counts."
        )
    columns = []
    for field in ITEM_SCHEMA:
        if field.name in frame.columns:
            columns.append(_arrow_column(frame[field.name], field))
        else:
            columns.append(pa.nulls(len(frame), type=field.type))
    return pa.Table.from_arrays(columns, schema=ITEM_SCHEMA)


def _arrow_column(column: pd.Series[Any], field: pa.Field) -> pa.Array:
    try:
        return pa.array(column, type=field.type, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise InvalidInputError(
            f"Column {field.name!r} cannot be read as {field.type} ({error}); use the "
            "frame's own dtypes from read_job() or read_export()."
        ) from None


def _job_from_attrs(attrs: Mapping[Hashable, Any], table: pa.Table) -> JobStatus | None:
    """The job's status from a frame's attrs, when the frame holds that one job only."""
    job_ids = pc.unique(table.column("job_id").drop_null()).to_pylist()
    if len(job_ids) != 1:
        return None
    figures = attrs.get("job")
    if not (isinstance(figures, dict) and figures.get("job_id") == job_ids[0]):
        jobs = attrs.get("jobs")
        figures = jobs.get(job_ids[0]) if isinstance(jobs, dict) else None
    return _job_from(figures)


def _job_from(figures: object) -> JobStatus | None:
    """A job's status from its ``to_dict()`` figures, or None when they do not fit."""
    if not isinstance(figures, dict):
        return None
    try:
        return JobStatus(**dict(figures, invalid_urls=tuple(figures.get("invalid_urls") or ())))
    except TypeError:  # attrs edited by hand, or written by another version
        return None


def _summary_of(table: pa.Table, *, job: JobStatus | None, output: dict[str, Any]) -> Summary:
    builder = SummaryBuilder()
    for batch in table.to_batches():
        builder.add(batch)
    job_ids = sorted(
        str(value) for value in pc.unique(table.column("job_id").drop_null()).to_pylist()
    )
    return builder.build(job_id=", ".join(job_ids), job=job, output=output)
