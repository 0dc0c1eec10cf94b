from __future__ import annotations

import gc
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from batch_export import atomic
from batch_export.atomic import atomic_output, check_writable, clean_stale_temporaries
from batch_export.errors import OutputError
from batch_export.schema import ITEM_SCHEMA
from batch_export.writers import open_writer

GOOD = b"the good file from last night\n"


class Boom(Exception):
    pass


def temporaries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".tmp"))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def make_temporary(folder: Path, name: str, pid: int, *, age: float = 0.0) -> Path:
    path = folder / f".{name}.batch-export-{pid}-0a1b2c3d.tmp"
    path.write_bytes(b"partial")
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


@pytest.fixture
def previous(tmp_path: Path) -> Path:
    path = tmp_path / "out.csv"
    path.write_bytes(GOOD)
    return path


def test_the_file_appears_complete_and_no_temporary_is_left(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    with atomic_output(path) as sink:
        sink.write(b"a,b\n")
        assert not path.exists()
        assert len(temporaries(tmp_path)) == 1
    assert path.read_bytes() == b"a,b\n"
    assert temporaries(tmp_path) == []


def test_the_temporary_sits_beside_the_destination_with_a_traceable_name(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "out.parquet"):
        (name,) = temporaries(tmp_path)
    assert re.fullmatch(rf"\.out\.parquet\.batch-export-{os.getpid()}-[0-9a-f]{{8}}\.tmp", name)


def test_the_new_file_gets_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        with atomic_output(tmp_path / "out.csv") as sink:
            sink.write(b"x")
    finally:
        os.umask(umask)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o644


def test_replaces_a_previous_file(previous: Path) -> None:
    with atomic_output(previous) as sink:
        sink.write(b"new\n")
    assert previous.read_bytes() == b"new\n"


@pytest.mark.parametrize("error", [Boom("the API went away"), KeyboardInterrupt()])
def test_a_failure_leaves_the_previous_file_untouched(previous: Path, error: BaseException) -> None:
    with pytest.raises(type(error)), atomic_output(previous) as sink:
        sink.write(b"half of the new file")
        raise error
    assert previous.read_bytes() == GOOD
    assert temporaries(previous.parent) == []


def test_a_writer_left_open_by_a_failure_does_not_complain_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    batch = pa.RecordBatch.from_pylist([{"input_index": 0}], schema=ITEM_SCHEMA)
    with pytest.raises(Boom), atomic_output(tmp_path / "out.parquet") as sink:
        writer = open_writer("parquet", sink)
        writer.write(batch)
        raise Boom
    # pyarrow's ParquetWriter closes itself when collected, writing to the discarded sink.
    del writer
    gc.collect()
    assert unraisable == []
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def file_size_limit() -> Iterator[int]:
    resource = pytest.importorskip("resource")
    limit = 256 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG, like a full disk.
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield limit
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_an_os_error_while_writing_becomes_output_error(
    previous: Path, file_size_limit: int
) -> None:
    with pytest.raises(OutputError) as caught, atomic_output(previous) as sink:
        sink.write(b"x" * (4 * file_size_limit))
    assert str(caught.value) == (
        f"Cannot write '{previous}': File too large. "
        "Nothing was changed there: fix the cause or choose another -o path."
    )
    assert caught.value.exit_code == 8
    assert previous.read_bytes() == GOOD
    assert temporaries(previous.parent) == []


def test_an_os_error_inside_a_writer_becomes_output_error(
    tmp_path: Path, file_size_limit: int
) -> None:
    rows = [{"markdown": "x" * 1000}] * (file_size_limit // 100)
    batch = pa.RecordBatch.from_pylist(rows, schema=ITEM_SCHEMA)
    with (
        pytest.raises(OutputError, match="File too large"),
        atomic_output(tmp_path / "out.csv") as sink,
    ):
        writer = open_writer("csv", sink)
        writer.write(batch)
        writer.close()
    assert list(tmp_path.iterdir()) == []


def test_an_os_error_while_moving_into_place_becomes_output_error(
    previous: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(source: Any, target: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OutputError, match="Permission denied"), atomic_output(previous) as sink:
        sink.write(b"new")
    assert previous.read_bytes() == GOOD
    assert temporaries(previous.parent) == []


def test_errors_that_are_not_about_the_file_pass_unchanged(previous: Path) -> None:
    with pytest.raises(ConnectionResetError), atomic_output(previous):
        raise ConnectionResetError(104, "Connection reset by peer")
    assert previous.read_bytes() == GOOD


def test_stale_temporaries_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = make_temporary(tmp_path, "out.csv", dead_pid())
    stale_own_pid = make_temporary(tmp_path, "out.csv", os.getpid())
    old = make_temporary(tmp_path, "out.csv", os.getppid(), age=2 * atomic.STALE_AFTER_SECONDS)
    removed = clean_stale_temporaries(tmp_path / "out.csv")
    assert sorted(removed) == sorted(str(path) for path in (dead, stale_own_pid, old))
    assert temporaries(tmp_path) == []


def test_live_runs_and_other_files_are_left_alone(tmp_path: Path) -> None:
    kept = [
        make_temporary(tmp_path, "out.csv", os.getppid()),
        make_temporary(tmp_path, "other.csv", dead_pid()),
        tmp_path / "out.csv.batch-export-1-0a1b2c3d.tmp",
        tmp_path / ".out.csv.batch-export-x-0a1b2c3d.tmp",
    ]
    for path in kept[2:]:
        path.write_bytes(b"")
    assert clean_stale_temporaries(tmp_path / "out.csv") == []
    assert all(path.exists() for path in kept)


def test_atomic_output_cleans_up_first(tmp_path: Path) -> None:
    dead = make_temporary(tmp_path, "out.csv", dead_pid())
    with atomic_output(tmp_path / "out.csv") as sink:
        assert not dead.exists()
        sink.write(b"ok")
    assert temporaries(tmp_path) == []


def test_its_own_temporaries_in_use_are_never_removed(tmp_path: Path) -> None:
    with atomic_output(tmp_path / "out.csv") as sink:
        assert clean_stale_temporaries(tmp_path / "out.csv") == []
        sink.write(b"ok")
    assert (tmp_path / "out.csv").read_bytes() == b"ok"


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    expected = (
        f"Output folder '{missing}' does not exist: create it first or choose another -o path."
    )
    with pytest.raises(OutputError) as caught:
        check_writable(missing / "out.csv")
    assert str(caught.value) == expected
    with pytest.raises(OutputError, match="does not exist"), atomic_output(missing / "out.csv"):
        pass
    assert not missing.exists()


def test_folder_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(OutputError) as caught:
        check_writable(tmp_path / "file" / "out.csv")
    assert str(caught.value) == (
        f"Output folder '{tmp_path / 'file'}' is not a folder: choose another -o path."
    )


def test_destination_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError) as caught:
        check_writable(tmp_path)
    assert str(caught.value) == (
        f"Output path '{tmp_path}' is a folder: name a file in it, "
        f"e.g. -o {tmp_path / 'export.parquet'}."
    )


def test_destination_that_is_a_pipe(tmp_path: Path) -> None:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this platform")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(OutputError) as caught:
        check_writable(tmp_path / "pipe")
    assert str(caught.value) == (
        f"Output path '{tmp_path / 'pipe'}' is not a regular file (a device or pipe?): "
        "choose another -o path."
    )


def expected_not_writable(folder: Path) -> str:
    return (
        f"Output folder '{folder}' is not writable: "
        "change its permissions or choose another -o path."
    )


# Root passes every permission check (CI runs as root), so the refusal is simulated.
def test_not_writable_message_even_as_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(OutputError) as caught:
        check_writable(tmp_path / "out.csv")
    assert str(caught.value) == expected_not_writable(tmp_path)


def test_a_relative_path_names_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check_writable("out.csv")
    with atomic_output("out.csv") as sink:
        sink.write(b"ok")
    assert (tmp_path / "out.csv").read_bytes() == b"ok"
    assert isinstance(sink, io.BufferedWriter)
