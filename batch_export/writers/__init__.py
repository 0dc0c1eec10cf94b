"""Writers: record batches of the item schema in, one file's bytes out.

A writer has a tiny interface (:class:`Writer`): ``write(batch)`` for each record batch of
:data:`~batch_export.schema.ITEM_SCHEMA`, then ``close()`` once. It writes to a binary sink
that it does not own and never closes (normally the temporary file of
:func:`batch_export.atomic.atomic_output`). :func:`open_writer` finds a writer by format;
:func:`resolve_format` tells the format from ``--format`` or from the output's extension.

Example:

    >>> import io, pyarrow as pa
    >>> from batch_export.schema import ITEM_SCHEMA
    >>> sink = io.BytesIO()
    >>> writer = open_writer(resolve_format("out.jsonl", None), sink)
    >>> writer.write(pa.RecordBatch.from_pylist([{"input_index": 7}], schema=ITEM_SCHEMA))
    >>> writer.close()
    >>> sink.getvalue().count(b"\\n")
    1
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import PurePath
from typing import BinaryIO, Protocol, runtime_checkable

import pyarrow as pa

from batch_export.errors import InvalidInputError
from batch_export.writers.csv import CsvWriter
from batch_export.writers.jsonl import JsonlWriter
from batch_export.writers.parquet import ParquetWriter

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "CsvWriter",
    "JsonlWriter",
    "ParquetWriter",
    "Writer",
    "open_writer",
    "resolve_format",
]

FORMATS: tuple[str, ...] = ("parquet", "csv", "jsonl")

EXTENSIONS: dict[str, str] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

# A name like out.csv.gz promises compression that no writer gives: refuse it, even with
# --format, rather than write a plain file under a compressed name.
_COMPRESSED_EXTENSIONS = frozenset({".gz", ".bz2", ".xz", ".zst", ".zstd", ".zip", ".lz4"})


@runtime_checkable
class Writer(Protocol):
    """What every writer does: take batches of the item schema, then finish the file."""

    format: str

    def write(self, batch: pa.RecordBatch) -> None:
        """Write the rows of ``batch`` (a record batch of ``ITEM_SCHEMA``)."""

    def close(self) -> None:
        """Write what is pending and the format's trailer; leave the sink open."""


_FACTORIES: dict[str, Callable[[BinaryIO], Writer]] = {
    "parquet": ParquetWriter,
    "jsonl": JsonlWriter,
}


def open_writer(fmt: str, sink: BinaryIO, *, escape_formulas: bool = False) -> Writer:
    """A writer of format ``fmt`` (one of :data:`FORMATS`) that writes to ``sink``.

    ``escape_formulas`` applies to CSV only (see :mod:`batch_export.writers.csv`); asking
    for it with another format is an :class:`InvalidInputError`.

    Example:

        >>> import io
        >>> open_writer("csv", io.BytesIO(), escape_formulas=True).format
        'csv'
    """
    fmt = _known_format(fmt)
    if fmt == "csv":
        return CsvWriter(sink, escape_formulas=escape_formulas)
    if escape_formulas:
        raise InvalidInputError(
            f"--escape-formulas applies to CSV output only, not {fmt}: "
            "drop it or write a .csv file."
        )
    return _FACTORIES[fmt](sink)


def resolve_format(path: str | os.PathLike[str], fmt: str | None) -> str:
    """The output format: ``fmt`` when given, else the one ``path``'s extension names.

    Example:

        >>> resolve_format("out/items.ndjson", None), resolve_format("items.dat", "csv")
        ('jsonl', 'csv')
        >>> resolve_format("out.txt", None)
        Traceback (most recent call last):
        ...
        batch_export.errors.InvalidInputError: Cannot tell the output format from 'out.txt': \
name it .parquet, .csv or .jsonl, or pass --format parquet|csv|jsonl.
    """
    suffix = PurePath(path).suffix.lower()
    if suffix in _COMPRESSED_EXTENSIONS:
        raise InvalidInputError(
            f"Compressed output is not supported: '{path}' would not be {suffix[1:]}. "
            "Name it .parquet, .csv or .jsonl (Parquet is compressed already)."
        )
    if fmt is not None:
        return _known_format(fmt)
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise InvalidInputError(
        f"Cannot tell the output format from '{path}': name it .parquet, .csv or .jsonl, "
        "or pass --format parquet|csv|jsonl."
    )


def _known_format(fmt: str) -> str:
    normalized = fmt.strip().lower()
    if normalized not in FORMATS:
        raise InvalidInputError(f"Unknown output format '{fmt}': pass --format parquet|csv|jsonl.")
    return normalized
