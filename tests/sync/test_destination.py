"""The file-system layer: files appear whole or not at all, on each kind of file system."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import BinaryIO

import pytest

from batch_export.errors import InvalidInputError, OutputError
from batch_export.sync.stores.destination import Destination


@pytest.fixture(params=["local", "memory"])
def dest(request: pytest.FixtureRequest, tmp_path: Path) -> Destination:
    """A destination on local disk (rename into place) or in memory (upload, then move)."""
    if request.param == "local":
        return Destination(str(tmp_path / "ds"))
    return Destination(f"memory://sync-{uuid.uuid4().hex}")


def test_publish_read_list_delete(dest: Destination) -> None:
    dest.publish_bytes("items/date=2026-05-26/j1.parquet", b"one")
    dest.publish_bytes("items/date=2026-05-26/j1.parquet", b"two")  # replaced whole
    dest.publish_bytes("_markers/j1.00ff.json", b"{}")
    assert dest.list_files("items") == ["items/date=2026-05-26/j1.parquet"]
    assert dest.read("items/date=2026-05-26/j1.parquet") == b"two"
    assert dest.list_files("_markers") == ["_markers/j1.00ff.json"]
    dest.delete("_markers/j1.00ff.json")
    dest.delete("_markers/j1.00ff.json")  # already gone: no error
    assert dest.list_files("_markers") == [] and dest.read("_markers/j1.00ff.json") is None
    assert dest.list_files("_staging") == []


class Boom(Exception):
    pass


def test_a_failed_write_leaves_nothing_and_its_error_passes_through(dest: Destination) -> None:
    dest.publish_bytes("jobs/j1.parquet", b"old")

    def half(sink: BinaryIO) -> None:
        sink.write(b"half of it")
        raise Boom

    with pytest.raises(Boom):
        dest.publish("jobs/j1.parquet", half)
    assert dest.read("jobs/j1.parquet") == b"old"
    assert dest.list_files("_staging") == []


def test_a_full_disk_while_writing_is_an_output_error(dest: Destination) -> None:
    def full(sink: BinaryIO) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError) as caught:
        dest.publish("items/j1.parquet", full)
    where = "the destination" if dest.is_local else "the temporary directory"
    assert str(caught.value) == (
        f"Cannot write items/j1.parquet for {dest.url}: the disk is full (No space left on "
        "device). "
        f"Check free space and permissions in {where}, then rerun."
    )


def test_publish_returns_what_the_writer_returns(dest: Destination) -> None:
    assert dest.publish("a/b.bin", lambda sink: sink.write(b"12345")) == 5


@pytest.mark.parametrize(
    ("url", "object_store"),
    [("s3://bucket/prefix", True), ("memory://x", False), ("/tmp/x", False)],
)
def test_object_stores_are_told_apart(url: str, object_store: bool) -> None:
    assert Destination(url).is_object_store is object_store


def test_an_unknown_scheme_is_a_usage_error() -> None:
    with pytest.raises(InvalidInputError) as caught:
        Destination("nosuchscheme://bucket/x")
    assert str(caught.value).startswith("Cannot use --dest 'nosuchscheme://bucket/x': ")
    assert caught.value.exit_code == 2


def test_a_file_is_not_a_destination(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="is a file: give a folder"):
        Destination(str(tmp_path / "f"))
