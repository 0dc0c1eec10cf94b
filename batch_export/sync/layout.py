"""Where a synced dataset keeps each thing, and the schema of its jobs table.

A destination holds (paths relative to ``DEST``)::

    _layout.json                              layout and schema versions of the dataset
    items/date=YYYY-MM-DD/<job_id>.parquet    one file per job: every item, ITEM_SCHEMA
    jobs/date=YYYY-MM-DD/<job_id>.parquet     one file per job: one row, JOBS_SCHEMA
    _markers/<job_id>.<token>.json            written last: what the sync recorded of the job
    _watermark.json                           how far the dataset is up to date (a sync's end)
    _staging/                                 files being written (local and plain file systems)

``date`` is the UTC day of the job's ``created_at``. The job id is a column of every file
rather than a ``job_id=`` directory: pandas and ``pyarrow.parquet.read_table`` refuse a hive
key that is also a column of the files, and a key inferred from a path would turn an id such
as ``0042`` into the integer 42.

A change to the paths or to :data:`JOBS_SCHEMA` bumps :data:`LAYOUT_VERSION`, and a sync
refuses a dataset of another layout. A change to the item schema bumps ``SCHEMA_VERSION`` in
:mod:`batch_export.schema`, and the next sync exports every job again under the new one.

Example:

    >>> items_path("j1", "2026-05-26")
    'items/date=2026-05-26/j1.parquet'
    >>> partition_date(parse_timestamp("2026-05-26T23:30:00-02:00", name="created_at"))
    '2026-05-27'
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from batch_export.batches import one_row
from batch_export.errors import ResponseShapeError
from batch_export.job import JobStatus
from batch_export.schema import SCHEMA_VERSION
from batch_export.text import shown, strict_json

__all__ = [
    "ITEMS_DIR",
    "JOBS_DIR",
    "JOBS_SCHEMA",
    "LAYOUT_FILE",
    "LAYOUT_VERSION",
    "MARKERS_DIR",
    "STAGING_DIR",
    "WATERMARK_FILE",
    "Marker",
    "fingerprint_token",
    "items_path",
    "job_id_of",
    "job_row",
    "jobs_path",
    "json_text",
    "layout_document",
    "marker_path",
    "parse_timestamp",
    "partition_date",
    "token_of",
]

LAYOUT_VERSION = 1

LAYOUT_FILE = "_layout.json"
ITEMS_DIR = "items"
JOBS_DIR = "jobs"
MARKERS_DIR = "_markers"
STAGING_DIR = "_staging"
WATERMARK_FILE = "_watermark.json"  # see batch_export.sync.watermark

_UTC_TIMESTAMP = pa.timestamp("us", tz="UTC")

JOBS_SCHEMA: pa.Schema = pa.schema(
    [
        pa.field("job_id", pa.string()),
        pa.field("status", pa.string()),
        pa.field("total_urls", pa.int64()),
        pa.field("completed_urls", pa.int64()),
        pa.field("failed_urls", pa.int64()),
        pa.field("cancelled_urls", pa.int64()),
        pa.field("pending_urls", pa.int64()),
        pa.field("invalid_urls", pa.list_(pa.string())),
        pa.field("tokens_charged_total", pa.int64()),
        pa.field("tokens_reserved", pa.int64()),
        pa.field("config", pa.string()),
        pa.field("created_at", _UTC_TIMESTAMP),
        pa.field("completed_at", _UTC_TIMESTAMP),
        pa.field("exported_at", _UTC_TIMESTAMP),
        pa.field("rows", pa.int64()),
        pa.field("tool_version", pa.string()),
        pa.field("schema_version", pa.int32()),
        pa.field("layout_version", pa.int32()),
        pa.field("extra", pa.string()),
    ],
    metadata={b"batch_export.layout_version": str(LAYOUT_VERSION).encode()},
)


def partition_date(created_at: datetime) -> str:
    """The ``date=`` partition of a job: the UTC day of its ``created_at``."""
    return created_at.astimezone(UTC).date().isoformat()


def items_path(job_id: str, day: str) -> str:
    """Path of a job's items file, relative to the destination."""
    return f"{ITEMS_DIR}/date={day}/{job_id}.parquet"


def jobs_path(job_id: str, day: str) -> str:
    """Path of a job's row of the jobs table, relative to the destination."""
    return f"{JOBS_DIR}/date={day}/{job_id}.parquet"


def marker_path(job_id: str, token: str) -> str:
    """Path of a job's marker, relative to the destination; ``token`` names what was exported.

    The token is in the name so that one listing of ``_markers/`` tells what the destination
    holds of every job, without reading a file per job.
    """
    return f"{MARKERS_DIR}/{job_id}.{token}.json"


def fingerprint_token(fingerprint: Mapping[str, Any]) -> str:
    """A short digest of a job's listed fields and of the schema and layout versions.

    A job whose token differs from the one in its marker's name is exported again: it changed,
    or it was exported under another item schema or layout.

    >>> len(fingerprint_token({"status": "completed"}))
    16
    """
    recorded = {
        "fingerprint": dict(fingerprint),
        "schema_version": SCHEMA_VERSION,
        "layout_version": LAYOUT_VERSION,
    }
    text = json.dumps(recorded, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def job_id_of(path: str) -> str:
    """The job id that an items, jobs or marker path belongs to (job ids hold no dot).

    >>> job_id_of("items/date=2026-05-26/j1.parquet"), job_id_of("_markers/j1.0a1b.json")
    ('j1', 'j1')
    """
    return path.rsplit("/", 1)[-1].split(".", 1)[0]


def token_of(path: str) -> str:
    """The token in a marker's name.

    >>> token_of("_markers/j1.0a1b.json")
    '0a1b'
    """
    return path.rsplit("/", 1)[-1].split(".")[1]


def parse_timestamp(value: str | None, *, name: str, job_id: str | None = None) -> datetime | None:
    """An ISO 8601 timestamp from the API as an aware UTC datetime; None stays None.

    A timestamp without an offset is taken as UTC, as the API documents UTC throughout. One
    that cannot be placed in UTC (``0001-01-01T00:00:00+01:00`` is before year 1 there) is
    refused like one that does not parse.
    """
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        raise ResponseShapeError(
            f"Expected `{name}` to be an ISO 8601 timestamp for job {job_id}, got {shown(value)}.",
            job_id=job_id,
        ) from None


def job_row(
    job: JobStatus,
    *,
    rows: int,
    exported_at: datetime,
    tool_version: str,
    created_at: datetime | None = None,
    schema: pa.Schema = JOBS_SCHEMA,
    more: Mapping[str, Any] | None = None,
) -> pa.Table:
    """The one-row table of :data:`JOBS_SCHEMA` that describes an exported job.

    ``created_at`` is used when the job's answer has none; a table store's ``schema`` (a
    superset of :data:`JOBS_SCHEMA`) takes its own columns' values from ``more``.

    >>> job = JobStatus(job_id="j1", status="completed", created_at="2026-05-26T10:30:00Z")
    >>> now = datetime(2026, 5, 27, tzinfo=UTC)
    >>> job_row(job, rows=0, exported_at=now, tool_version="0.1.0").column("status")[0].as_py()
    'completed'
    """
    row = {
        "job_id": job.job_id,
        "status": job.status,
        "total_urls": job.total_urls,
        "completed_urls": job.completed_urls,
        "failed_urls": job.failed_urls,
        "cancelled_urls": job.cancelled_urls,
        "pending_urls": job.pending_urls,
        "invalid_urls": list(job.invalid_urls),
        "tokens_charged_total": job.tokens_charged_total,
        "tokens_reserved": job.tokens_reserved,
        "config": json_text(job.batch_config, name="batch_config", job_id=job.job_id),
        "created_at": parse_timestamp(job.created_at, name="created_at", job_id=job.job_id)
        or created_at,
        "completed_at": parse_timestamp(job.completed_at, name="completed_at", job_id=job.job_id),
        "exported_at": exported_at,
        "rows": rows,
        "tool_version": tool_version,
        "schema_version": SCHEMA_VERSION,
        "layout_version": LAYOUT_VERSION,
        "extra": json_text(job.extra or None, name="extra", job_id=job.job_id),
        **(more or {}),
    }
    try:
        return one_row(schema, row)
    except ValueError as error:
        # Counters past int64, say: the job's answer, not the table, is at fault.
        raise ResponseShapeError(
            f"The status of job {job.job_id} holds a value the jobs table cannot store "
            f"({shown(str(error))}); expected counters and tokens that fit 64 bits.",
            job_id=job.job_id,
        ) from None


def json_text(value: Any, *, name: str, job_id: str | None = None) -> str | None:
    """``value`` as compact strict JSON text, keys sorted, for a text column; None stays None.

    NaN and the infinities become ``null`` (see :func:`batch_export.text.strict_json`); a
    value nested too deep to encode is a :class:`ResponseShapeError` naming the field.

    >>> json_text({"b": float("nan"), "a": [1, float("inf")]}, name="batch_config")
    '{"a":[1,null],"b":null}'
    """
    if value is None:
        return None
    try:
        return strict_json(value, sort_keys=True)
    except (RecursionError, ValueError, TypeError):
        raise ResponseShapeError(
            f"Expected `{name}` of job {job_id} to be JSON that can be stored as text, got a "
            "value nested too deep or of another kind.",
            job_id=job_id,
        ) from None


def layout_document(tool_version: str) -> dict[str, Any]:
    """What ``_layout.json`` says: the layout a reader can rely on, and which files to trust.

    The item schema's version is not here but in each job's row (``schema_version``): after
    a schema change, jobs move to the new version one by one as they are exported again.
    """
    return {
        "layout_version": LAYOUT_VERSION,
        "created_by": f"batch-export {tool_version}",
        "trust": "the jobs table: a job is in the dataset when its row is in jobs/",
    }


@dataclass(frozen=True, kw_only=True)
class Marker:
    """What a sync recorded of one exported job, for people and tools auditing a dataset.

    ``fingerprint`` holds the job's fields from ``GET /v1/batch/jobs`` when it was exported;
    ``token`` (also in the marker's name) is their digest, which the sync compares. ``counts``
    holds what the table stores' jobs rows count of the load and :data:`JOBS_SCHEMA` does not
    (``failure_codes`` as a JSON object, ``failed_retryable``, ``api_key_hidden``): a new
    column there would change the layout; a marker of an earlier version has none.

    >>> marker = Marker(job_id="j1", fingerprint={"status": "completed"}, token="0a1b", rows=3,
    ...                 items_path="items/date=2026-05-26/j1.parquet",
    ...                 jobs_path="jobs/date=2026-05-26/j1.parquet",
    ...                 exported_at="2026-05-27T00:00:00+00:00", tool_version="0.1.0")
    >>> Marker.from_json(marker.to_json()) == marker
    True
    """

    job_id: str
    fingerprint: dict[str, Any]
    token: str
    rows: int
    items_path: str
    jobs_path: str
    exported_at: str
    tool_version: str
    schema_version: int = SCHEMA_VERSION
    layout_version: int = LAYOUT_VERSION
    counts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> bytes:
        """The marker as the UTF-8 JSON text that is stored."""
        text = json.dumps(asdict(self), indent=2, sort_keys=True, allow_nan=False)
        return (text + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Marker:
        """Read a stored marker; raise ValueError when it is not one."""
        try:
            fields = json.loads(data)
            marker = cls(**fields)
        except (TypeError, ValueError) as error:
            raise ValueError(f"not a sync marker: {error}") from None
        mappings = (marker.fingerprint, marker.counts)
        if not all(isinstance(m, dict) for m in mappings) or not isinstance(marker.items_path, str):
            raise ValueError("not a sync marker: wrong field types")
        return marker
