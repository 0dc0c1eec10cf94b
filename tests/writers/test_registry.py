from __future__ import annotations

import importlib
import inspect
import io
from pathlib import Path

import pytest

from batch_export import writers
from batch_export.errors import InvalidInputError
from batch_export.writers import FORMATS, Writer, open_writer, resolve_format


@pytest.mark.parametrize(
    ("path", "fmt", "expected"),
    [
        ("out.parquet", None, "parquet"),
        ("out/items.pq", None, "parquet"),
        ("out.csv", None, "csv"),
        ("OUT.CSV", None, "csv"),
        ("out.jsonl", None, "jsonl"),
        ("out.ndjson", None, "jsonl"),
        (Path("dir.csv") / "out.jsonl", None, "jsonl"),
        ("out.txt", "csv", "csv"),
        ("out", "parquet", "parquet"),
        ("out.parquet", "JSONL", "jsonl"),
    ],
)
def test_resolve_format(path: str, fmt: str | None, expected: str) -> None:
    assert resolve_format(path, fmt) == expected


@pytest.mark.parametrize(
    ("path", "fmt", "message"),
    [
        (
            "out.txt",
            None,
            "Cannot tell the output format from 'out.txt': name it .parquet, .csv or .jsonl, "
            "or pass --format parquet|csv|jsonl.",
        ),
        (
            "out",
            None,
            "Cannot tell the output format from 'out': name it .parquet, .csv or .jsonl, "
            "or pass --format parquet|csv|jsonl.",
        ),
        (
            "out.csv.gz",
            None,
            "Compressed output is not supported: 'out.csv.gz' would not be gz. "
            "Name it .parquet, .csv or .jsonl (Parquet is compressed already).",
        ),
        (
            "out.jsonl.zst",
            "jsonl",
            "Compressed output is not supported: 'out.jsonl.zst' would not be zst. "
            "Name it .parquet, .csv or .jsonl (Parquet is compressed already).",
        ),
        ("out.csv", "xlsx", "Unknown output format 'xlsx': pass --format parquet|csv|jsonl."),
    ],
)
def test_resolve_format_refuses(path: str, fmt: str | None, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        resolve_format(path, fmt)
    assert str(caught.value) == message
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("fmt", FORMATS)
def test_open_writer_finds_each_format(fmt: str) -> None:
    writer = open_writer(fmt, io.BytesIO())
    assert isinstance(writer, Writer)
    assert writer.format == fmt
    writer.close()


def test_formats() -> None:
    assert FORMATS == ("parquet", "csv", "jsonl")
    assert set(writers.EXTENSIONS.values()) == set(FORMATS)


def test_escape_formulas_is_for_csv_only() -> None:
    assert open_writer("csv", io.BytesIO(), escape_formulas=True).format == "csv"
    with pytest.raises(InvalidInputError) as caught:
        open_writer("parquet", io.BytesIO(), escape_formulas=True)
    assert str(caught.value) == (
        "--escape-formulas applies to CSV output only, not parquet: drop it or write a .csv file."
    )


def test_open_writer_refuses_an_unknown_format() -> None:
    with pytest.raises(InvalidInputError, match="Unknown output format 'xml'"):
        open_writer("xml", io.BytesIO())


@pytest.mark.parametrize(
    "module",
    [
        "batch_export.writers",
        "batch_export.writers.csv",
        "batch_export.writers.jsonl",
        "batch_export.writers.parquet",
        "batch_export.atomic",
    ],
)
def test_all_is_honest(module: str) -> None:
    loaded = importlib.import_module(module)
    assert sorted(loaded.__all__) == sorted(set(loaded.__all__))
    for name in loaded.__all__:
        assert hasattr(loaded, name), f"{module}.__all__ names {name}, which is not there"
    public_definitions = {
        name
        for name, value in vars(loaded).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module
    }
    assert public_definitions <= set(loaded.__all__)
