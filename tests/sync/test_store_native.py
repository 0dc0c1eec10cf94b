"""Native libraries speak through us: a full or read-only disk under every destination.

deltalake (Rust) panics in its worker threads with a ``stack backtrace:``, pyarrow (C++)
prints lines about files it could not close, DuckDB hides a full disk behind "cannot
rollback", PostgreSQL's server runs out of space: each case runs ``batch-export sync
--log-format json`` as a process (with ``RUST_BACKTRACE=1``, so a panic prints all it can)
into a destination on a tiny tmpfs (tests/sync/tmpfs.py), and holds it to the promise: every
line on stderr is one of our JSON events (what a library printed folded into a
``native_output`` event), but the last ``Error:`` sentence; and each failure says "the disk is
full" or "the file system is read-only", whatever the destination.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.export import Connection
from batch_export.sync import sync
from batch_export.sync.stores import delta as delta_store
from batch_export.sync.stores.dataset import DatasetStore
from batch_export.sync.stores.native import (
    MAX_LINES,
    captured_stderr,
    native_event,
    native_events,
)
from batch_export.testing import Emulator, generate_account
from tests.conftest import CANARY_KEY
from tests.postgres import PostgresServer, running_postgres
from tests.sync.conftest import expected_rows, recorder, small_docs
from tests.sync.tmpfs import tiny_tmpfs

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

# Pages of 2 to 6 KB of text, as scraped pages are: a few jobs fill the tiny disk.
ACCOUNT = tuple(
    generate_account(jobs=8, processing=0, seed=5, items=(20, 40), markdown_bytes=20_000)
)
DISK_KB = 320
FOLDER_KINDS = {
    "parquet": lambda root: ["--dest", str(root / "ds")],
    "delta": lambda root: ["--dest", str(root / "lake"), "--table-format", "delta"],
    "duckdb": lambda root: ["--dest", f"duckdb://{root}/w.duckdb"],
}


@dataclass(frozen=True)
class Outcome:
    """How one sync process ended: its exit code, events, and the last line if not an event."""

    exit_code: int
    events: list[dict[str, Any]]
    error: str | None

    def failures(self) -> list[str]:
        """What each failed job's event says; and the run's own sentence, when it could not
        run at all (exit 8: with exit 10, the sentence only counts the failed jobs)."""
        reasons = [e["reason"] for e in self.events if e["event"] == "job_failed"]
        return reasons + ([self.error] if self.error and self.exit_code == 8 else [])


def run_sync(args: list[str], emulator: Emulator) -> Outcome:
    env = {
        **os.environ,
        "SCRAPER_API_BASE_URL": emulator.base_url,
        "GEONODE_SCRAPER_API_KEY": CANARY_KEY,
        "RUST_BACKTRACE": "1",
    }
    command = [sys.executable, "-m", "batch_export", "sync", *args, "--log-format", "json"]
    done = subprocess.run(
        [*command, "--jobs", "2"], env=env, capture_output=True, text=True, timeout=300
    )
    lines = done.stderr.splitlines()
    error = lines.pop() if lines and lines[-1].startswith("Error: ") else None
    # The promise: nothing else on stderr but our JSON events.
    raw = [line for line in lines if not line.startswith("{")]
    assert raw == [], "\n".join(raw[:20])
    return Outcome(done.returncode, [json.loads(line) for line in lines], error)


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(jobs=ACCOUNT, api_key=CANARY_KEY) as served:
        yield served


@pytest.mark.parametrize("kind", sorted(FOLDER_KINDS))
def test_a_full_disk_says_disk_full_in_json_and_nothing_raw(
    kind: str, tmp_path: Path, emulator: Emulator
) -> None:
    with tiny_tmpfs(tmp_path / "disk", kilobytes=DISK_KB) as disk:
        outcome = run_sync(FOLDER_KINDS[kind](disk), emulator)
    failures = outcome.failures()
    assert outcome.exit_code in (8, 10) and failures, outcome
    assert all("the disk is full" in reason for reason in failures), failures
    assert not any("cannot rollback" in reason for reason in failures)
    for event in outcome.events:  # what a library printed came as our event, bounded
        if event["event"] == "native_output":
            assert event["lines"] >= 1 and event["text"].count("\n") <= MAX_LINES


@pytest.mark.parametrize("kind", sorted(FOLDER_KINDS))
def test_a_read_only_disk_says_so_in_one_sentence(
    kind: str, tmp_path: Path, emulator: Emulator
) -> None:
    with tiny_tmpfs(tmp_path / "disk", kilobytes=64, read_only=True) as disk:
        outcome = run_sync(FOLDER_KINDS[kind](disk), emulator)
    assert outcome.exit_code == 8, outcome
    assert outcome.error is not None and "the file system is read-only" in outcome.error
    assert "\n" not in outcome.error


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


def test_a_full_disk_under_postgresql_says_so(postgres: PostgresServer, emulator: Emulator) -> None:
    # Not under pytest's folder, which the server's unprivileged user cannot enter.
    folder = Path(tempfile.mkdtemp(prefix="batch-export-tablespace-"))
    folder.chmod(0o755)
    with tiny_tmpfs(folder / "space", kilobytes=DISK_KB, owner="nobody") as space:
        role = "filler"
        postgres.psql(f"CREATE TABLESPACE tiny LOCATION '{space}'")  # not in a transaction
        postgres.psql(
            f"CREATE ROLE {role} LOGIN; CREATE SCHEMA {role} AUTHORIZATION {role}; "
            f"GRANT CREATE ON TABLESPACE tiny TO {role}; "
            f"ALTER ROLE {role} SET default_tablespace = tiny; "
            f"ALTER ROLE {role} SET temp_tablespaces = tiny"
        )
        try:
            outcome = run_sync(["--dest", postgres.url(user=role)], emulator)
        finally:
            postgres.psql(f"DROP SCHEMA {role} CASCADE")
            postgres.psql("DROP TABLESPACE tiny")
    shutil.rmtree(folder, ignore_errors=True)
    failures = outcome.failures()
    assert outcome.exit_code in (8, 10) and failures, outcome
    assert all("the database server's disk is full" in reason for reason in failures), failures


def test_what_native_code_writes_becomes_bursts_and_ours_goes_through() -> None:
    bursts: list[tuple[list[str], int]] = []
    with captured_stderr() as captured:
        os.write(2, b"thread 'tokio-rt-worker' panicked at buffered.rs:369:41:\n")
        time.sleep(0.5)  # a pause ends a burst: this one is kept until there is a callback
        captured.hand_to(lambda lines, count: bursts.append((lines, count)))
        libc = ctypes.CDLL(None)
        for number in range(MAX_LINES + 5):  # from C, as pyarrow's and libpq's lines come
            libc.write(2, f"frame {number}\n".encode(), len(f"frame {number}\n"))
        time.sleep(0.5)  # a pause ends a burst
        os.write(2, b"Already shut down")  # no newline: handed on at the end
    assert bursts[0] == (["thread 'tokio-rt-worker' panicked at buffered.rs:369:41:"], 1)
    lines, count = bursts[1]
    assert count == MAX_LINES + 5 and lines == [f"frame {n}" for n in range(MAX_LINES)]
    assert bursts[2] == (["Already shut down"], 1)
    assert str(native_event(*bursts[1])["text"]).endswith("frame 19\n...")
    with contextlib.suppress(OSError):
        os.write(2, b"")  # descriptor 2 is itself again


def test_compact_tells_what_deltalake_printed_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def noisy(dest: str, **options: object) -> dict[str, dict[str, int]]:
        os.write(2, b"thread 'tokio-rt-worker' panicked at buffered.rs:369:41:\n")
        os.write(2, b"Already shut down\nstack backtrace:\n")
        return {}

    monkeypatch.setattr(delta_store, "compact", noisy)
    result = CliRunner().invoke(main, ["compact", "--dest", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "batch-export compact: deltalake printed 3 line(s) on stderr: thread 'tokio-rt-worker' "
        "panicked at buffered.rs:369:41:\n"
    )


# --- sync() from Python: the same events as the command --------------------------------

PANIC = (
    "thread 'tokio-rt-worker' panicked at buffered.rs:369:41:",
    "stack backtrace:",
    "   0: rust_begin_unwind",
)
# A script that calls the library as a notebook would, with events on sys.stderr (descriptor
# 2 itself, unlike under pytest), and a store whose prepare() writes from C to descriptor 2.
NOTEBOOK = f"""
import ctypes, sys
from batch_export.sync import EventLog, sync
from batch_export.sync.stores.dataset import DatasetStore

original = DatasetStore.prepare

def noisy(self):
    for line in {[line + chr(10) for line in PANIC]!r}:
        ctypes.CDLL(None).write(2, line.encode(), len(line))
    return original(self)

DatasetStore.prepare = noisy
print("ours, before", file=sys.stderr)
sync(sys.argv[1], on_event=EventLog(log_format="json"))
print("ours, after", file=sys.stderr)
"""


def test_sync_from_python_tells_what_native_code_printed_as_an_event(
    small: Connection,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    original = DatasetStore.prepare

    def noisy(store: DatasetStore) -> int:
        libc = ctypes.CDLL(None)  # from C, as pyarrow's and libpq's lines come
        for line in PANIC:
            libc.write(2, (line + "\n").encode(), len(line) + 1)
        return original(store)

    monkeypatch.setattr(DatasetStore, "prepare", noisy)
    events: list[tuple[str, dict[str, Any]]] = []
    report = sync(tmp_path / "ds", connection=small, on_event=recorder(events))
    assert report.exit_code == 0
    said = [fields for name, fields in events if name == "native_output"]
    # Every line, in order, none raw (one burst, unless the machine paused the writer 0.2 s).
    assert said and sum(fields["lines"] for fields in said) == len(PANIC)
    assert "\n".join(str(fields["text"]) for fields in said) == "\n".join(PANIC)
    assert events[-1][0] == "run_finished"
    assert "panicked" not in capfd.readouterr().err


def test_a_notebook_with_events_on_stderr_gets_only_events(
    small_account: Emulator, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "SCRAPER_API_BASE_URL": small_account.base_url,
        "GEONODE_SCRAPER_API_KEY": CANARY_KEY,
    }
    done = subprocess.run(
        [sys.executable, "-c", NOTEBOOK, str(tmp_path / "ds")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    # Our own lines pass as they are; the native ones come once, inside one event.
    assert lines[0] == "ours, before" and lines[-1] == "ours, after"
    events = [json.loads(line) for line in lines[1:-1]]
    said = [event for event in events if event["event"] == "native_output"]
    assert said and sum(event["lines"] for event in said) == len(PANIC)
    assert "\n".join(event["text"] for event in said) == "\n".join(PANIC)
    assert events[-1]["event"] == "run_finished"
    assert sum(event["event"] == "job_exported" for event in events) == len(
        expected_rows(small_docs())
    )


def test_without_a_descriptor_2_nothing_is_caught_and_nothing_fails() -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    saved = os.dup(2)
    os.close(2)  # as under pythonw, or in a daemon that closed it
    try:
        with native_events(recorder(events)):
            pass
        still_closed = not Path("/proc/self/fd/2").exists()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    assert events == [] and still_closed
