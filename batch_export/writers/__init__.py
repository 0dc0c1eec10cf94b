"""Writers: record batches of the item schema in, one file's bytes out.

A writer has a tiny interface (:class:`Writer`): ``write(batch)`` for each record batch of
:data:`~batch_export.schema.ITEM_SCHEMA`, then ``close()`` once. It writes to a binary sink
that it does not own and never closes (normally the temporary file of
:func:`batch_export.atomic.atomic_output`).

:data:`REGISTRY` is the one table of formats: each :class:`WriterFormat` names its format, its
file extensions, its writer class and the writer options that apply to it. Everything else
derives from it: :data:`FORMATS` (the CLI's ``--format`` choices), :func:`resolve_format` (the
guess from an output's extension), :func:`open_writer` (which refuses an option that does not
apply, such as ``escape_formulas`` for Parquet). **A new format** is one module in this package
with a class that follows :class:`Writer` and a function that reads its files back, and one
entry in :data:`REGISTRY`.

Writer classes are imported when a file of their format is opened, so that the CLI starts
without loading pyarrow.

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

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast, runtime_checkable

from batch_export.errors import InvalidInputError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "EXTENSIONS",
    "FORMATS",
    "REGISTRY",
    "Writer",
    "WriterFormat",
    "check_options",
    "open_writer",
    "resolve_format",
    "writer_format",
]


@runtime_checkable
class Writer(Protocol):
    """What every writer does: take batches of the item schema, then finish the file."""

    format: str

    def write(self, batch: pa.RecordBatch) -> None:
        """Write the rows of ``batch`` (a record batch of ``ITEM_SCHEMA``)."""

    def close(self) -> None:
        """Write what is pending and the format's trailer; leave the sink open."""


@dataclass(frozen=True, kw_only=True)
class WriterFormat:
    """One output format: its name, extensions, writer class and the options it takes.

    ``writer`` is ``"module:Class"``; the class is called as ``Class(sink, **options)``.
    ``reader`` is ``"module:function"``, called as ``function(binary_file, block_size)``, that
    reads such a file back into an Arrow table (``batch-export report``, ``read_export``).
    The options a writer may take are ``escape_formulas`` (bool), ``metadata`` (the job's
    header as string key-value pairs, for formats that carry it in the file) and ``schema``
    (every writer: the schema of the batches, when not the item schema).
    """

    name: str
    extensions: tuple[str, ...]
    writer: str
    reader: str
    options: frozenset[str] = frozenset()

    def open(self, sink: BinaryIO, **options: Any) -> Writer:
        """A writer of this format on ``sink``, given only the options that apply."""
        cls = _load(self.writer)
        return cast(Writer, cls(sink, **{k: v for k, v in options.items() if k in self.options}))

    def read(self, handle: BinaryIO, block_size: int) -> pa.Table:
        """A file of this format read back, as written (the caller checks the schema)."""
        table: pa.Table = _load(self.reader)(handle, block_size)
        return table


def _load(where: str) -> Any:
    module, _, name = where.partition(":")
    return getattr(importlib.import_module(module), name)


REGISTRY: tuple[WriterFormat, ...] = (
    WriterFormat(
        name="parquet",
        extensions=(".parquet", ".pq"),
        writer="batch_export.writers.parquet:ParquetWriter",
        reader="batch_export.writers.parquet:read_table",
        options=frozenset({"metadata", "schema"}),
    ),
    WriterFormat(
        name="csv",
        extensions=(".csv",),
        writer="batch_export.writers.csv:CsvWriter",
        reader="batch_export.writers.csv:read_table",
        options=frozenset({"escape_formulas", "schema"}),
    ),
    WriterFormat(
        name="jsonl",
        extensions=(".jsonl", ".ndjson"),
        writer="batch_export.writers.jsonl:JsonlWriter",
        reader="batch_export.writers.jsonl:read_table",
        options=frozenset({"schema"}),
    ),
)

FORMATS: tuple[str, ...] = tuple(entry.name for entry in REGISTRY)
EXTENSIONS: dict[str, str] = {ext: entry.name for entry in REGISTRY for ext in entry.extensions}
_BY_NAME = {entry.name: entry for entry in REGISTRY}

# A name like out.csv.gz promises compression that no writer gives: refuse it, even with
# --format, rather than write a plain file under a compressed name.
_COMPRESSED_EXTENSIONS = frozenset({".gz", ".bz2", ".xz", ".zst", ".zstd", ".zip", ".lz4"})


def _names(separator: str, prefix: str = "") -> str:
    names = [prefix + name for name in FORMATS]
    return separator.join(names) if separator == "|" else ", ".join(names[:-1]) + " or " + names[-1]


def open_writer(
    fmt: str,
    sink: BinaryIO,
    *,
    escape_formulas: bool = False,
    metadata: Mapping[str, str] | None = None,
    schema: pa.Schema | None = None,
) -> Writer:
    """A writer of format ``fmt`` (one of :data:`FORMATS`) that writes to ``sink``.

    ``escape_formulas`` applies to formats that take it (CSV, see
    :mod:`batch_export.writers.csv`); asking for it with another is an
    :class:`InvalidInputError`. ``metadata`` goes into formats that carry it (Parquet) and is
    left out of the others. ``schema`` replaces the item schema for a table that adds columns
    to it (``batch-export scrape``'s :data:`~batch_export.schema.SCRAPE_SCHEMA`).

    Example:

        >>> import io
        >>> open_writer("csv", io.BytesIO(), escape_formulas=True).format
        'csv'
    """
    entry = check_options(fmt, escape_formulas=escape_formulas)
    options: dict[str, Any] = {"escape_formulas": escape_formulas, "metadata": metadata}
    if schema is not None:
        options["schema"] = schema
    return entry.open(sink, **options)


def check_options(fmt: str, *, escape_formulas: bool = False) -> WriterFormat:
    """The entry of ``fmt``; :class:`InvalidInputError` for an option that it does not take.

    Called before any network work, so that a wrong combination costs nothing.
    """
    entry = writer_format(fmt)
    if escape_formulas and "escape_formulas" not in entry.options:
        takers = [e.name.upper() for e in REGISTRY if "escape_formulas" in e.options]
        raise InvalidInputError(
            f"--escape-formulas applies to {' and '.join(takers)} output only, not "
            f"{entry.name}: drop it or write a .csv file."
        )
    return entry


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
            f"Name it {_names(', ', '.')} (Parquet is compressed already)."
        )
    if fmt is not None:
        return writer_format(fmt).name
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    raise InvalidInputError(
        f"Cannot tell the output format from '{path}': name it {_names(', ', '.')}, "
        f"or pass --format {_names('|')}."
    )


def writer_format(fmt: str) -> WriterFormat:
    """The registry entry of ``fmt`` (any case); :class:`InvalidInputError` if unknown."""
    entry = _BY_NAME.get(fmt.strip().lower())
    if entry is None:
        raise InvalidInputError(f"Unknown output format '{fmt}': pass --format {_names('|')}.")
    return entry
