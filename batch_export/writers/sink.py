"""Batches to one file's bytes: a writer of the registry, fed beside the fetching.

:func:`write_batches` is the one way the package writes record batches into a sink: the
export's file and the Parquet dataset store's job files both go through it. The writer takes
the job's header where its format can carry it (Parquet), and runs on a thread of its own
(:mod:`~batch_export.writers.handoff`) for a job big enough to gain from one.

Example:

    >>> import io, pyarrow as pa
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> batch = pa.RecordBatch.from_pylist([{"input_index": 0}], schema=ITEM_SCHEMA)
    >>> write_batches([batch], io.BytesIO(), format="jsonl")
    1
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, BinaryIO

from batch_export.version import __version__
from batch_export.writers import open_writer
from batch_export.writers.handoff import Handoff

if TYPE_CHECKING:
    import pyarrow as pa

    from batch_export.job import JobStatus

__all__ = ["write_batches"]

# Up to this many rows (one joined batch of the road, or two), a thread for the writing would
# cost more than it saves.
SMALL_JOB_ROWS = 2_000


def write_batches(
    batches: Iterable[pa.RecordBatch],
    sink: BinaryIO,
    *,
    format: str,
    job: JobStatus | None = None,
    escape_formulas: bool = False,
) -> int:
    """Write ``batches`` to ``sink`` in ``format``; return the number of rows written.

    With ``job`` (the status of the job the batches come from), formats that can carry it
    (Parquet) hold the job's header in the file. The writer is closed on failure too, so that the
    caller can throw the sink away.
    """
    from batch_export.schema import export_metadata

    metadata = None if job is None else export_metadata(job.to_dict(), tool_version=__version__)
    writer = open_writer(format, sink, escape_formulas=escape_formulas, metadata=metadata)
    rows = 0
    try:
        if job is not None and (job.expected_items or 0) <= SMALL_JOB_ROWS:
            # A small job is one batch or two: a thread for its writing would cost more.
            for batch in batches:
                writer.write(batch)
                rows += batch.num_rows
            return rows
        with Handoff(writer.write) as handoff:
            for batch in batches:
                handoff.put(batch)
                rows += batch.num_rows
    finally:
        writer.close()
    return rows
