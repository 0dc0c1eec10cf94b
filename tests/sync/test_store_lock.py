"""The Parquet dataset's writer lock: one sync at a time, a second refused, stale locks taken.

On local disk the lock is ``flock`` (a dead holder's lock is gone with it); on an object store
it is a file created only if absent, refreshed by its holder and judged by pid, host and age.
Object stores are tried on fsspec's memory file system and on the loopback S3 server (moto),
whose conditional write is the real one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from batch_export.errors import OutputError
from batch_export.sync.stores.dataset import DatasetStore
from batch_export.sync.stores.destination import Destination
from batch_export.sync.stores.lock import LOCK_FILE, STALE_AFTER, Holder, WriterLock

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow


def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def memory() -> Destination:
    return Destination(f"memory://lock-{uuid.uuid4().hex}")


def left_lock(dest: Destination, **changes: object) -> Holder:
    """A lock file as another sync would leave it (this process's pid unless changed)."""
    holder = replace(Holder.me(), **changes)  # type: ignore[arg-type]
    dest.publish_bytes(LOCK_FILE, holder.to_json())
    return holder


def test_a_second_sync_into_a_local_folder_is_refused_in_one_sentence(tmp_path: Path) -> None:
    first, second = DatasetStore(tmp_path / "ds"), DatasetStore(tmp_path / "ds")
    first.prepare()
    with pytest.raises(OutputError) as refused:
        second.prepare()
    message = str(refused.value)
    assert message.startswith(
        f"{tmp_path / 'ds'} is being synced by another process (pid {Holder.me().pid} on "
        f"{socket.gethostname()}, since 20"
    )
    assert message.endswith(
        "): run one sync at a time per destination, or wait for that one to end (a lock not "
        "refreshed for 0:10:00 is taken over; on local disk, one whose process ended)."
    )
    assert refused.value.exit_code == 8 and "\n" not in message
    first.close()
    assert not (tmp_path / "ds" / LOCK_FILE).exists()  # given back, and removed
    second.prepare()  # the first one has ended: the second goes on
    second.close()


def test_a_local_lock_whose_process_ended_is_taken_over(tmp_path: Path) -> None:
    dest = Destination(str(tmp_path))
    left_lock(dest, pid=dead_pid())  # a file, but nobody holds the OS lock on it any more
    lock = WriterLock(dest)
    lock.acquire()
    assert Holder.from_json((tmp_path / LOCK_FILE).read_bytes()) == lock.holder
    lock.release()


def test_a_live_holder_on_an_object_store_is_refused() -> None:
    dest = memory()
    left_lock(dest)  # this very process: alive
    with pytest.raises(OutputError, match=r"is being synced by another process \(pid "):
        WriterLock(dest).acquire()
    left_lock(dest, host="etl-other-host")  # another host, refreshed just now
    with pytest.raises(OutputError, match=r"\(pid \d+ on etl-other-host, since "):
        WriterLock(dest).acquire()


@pytest.mark.parametrize(
    "stale",
    [
        {"pid": "dead"},  # a process of this host that has ended
        {"boot_id": "an-earlier-boot"},  # this host started again since
        {"host": "etl-other-host", "refreshed_at": "old"},  # not refreshed for too long
    ],
)
def test_a_stale_lock_on_an_object_store_is_taken_over(stale: dict[str, str]) -> None:
    dest = memory()
    changes: dict[str, object] = dict(stale)
    if stale.get("pid") == "dead":
        changes["pid"] = dead_pid()
    if stale.get("refreshed_at") == "old":
        changes["refreshed_at"] = (datetime.now(UTC) - STALE_AFTER - timedelta(1)).isoformat()
    left = left_lock(dest, **changes)
    lock = WriterLock(dest)
    lock.acquire()
    assert lock.holder is not None and lock.holder.token != left.token
    assert Holder.from_json(dest.read(LOCK_FILE) or b"") == lock.holder
    lock.release()
    assert dest.read(LOCK_FILE) is None


def test_an_unreadable_lock_file_is_taken_over() -> None:
    dest = memory()
    dest.publish_bytes(LOCK_FILE, b"not a lock")
    lock = WriterLock(dest)
    lock.acquire()
    lock.release()


def test_the_holder_refreshes_its_lock_and_stops_when_it_was_taken_over() -> None:
    dest = memory()
    lock = WriterLock(dest, refresh_seconds=0.05)
    lock.acquire()
    assert lock.holder is not None
    started = lock.holder.refreshed_at
    deadline = time.monotonic() + 10
    while (Holder.from_json(dest.read(LOCK_FILE) or b"") or lock.holder).refreshed_at == started:
        assert time.monotonic() < deadline, "the lock was never refreshed"
        time.sleep(0.02)
    lock.check()  # still ours
    thief = left_lock(dest, host="etl-other-host")
    while lock._lost is None:
        assert time.monotonic() < deadline, "the takeover was never noticed"
        time.sleep(0.02)
    with pytest.raises(OutputError) as lost:
        lock.check()
    assert str(lost.value).startswith(f"{dest.url} was taken over by another sync ({thief})")
    lock.release()
    assert Holder.from_json(dest.read(LOCK_FILE) or b"") == thief  # the thief's lock stays


def test_the_dataset_on_s3_takes_one_writer(s3_endpoint: str, s3_bucket: str) -> None:
    url = f"s3://{s3_bucket}/ds"
    options = {"endpoint_url": s3_endpoint}
    first = DatasetStore(url, storage_options=options)
    second = DatasetStore(url, storage_options=options)
    first.prepare()
    with pytest.raises(OutputError, match=r"is being synced by another process \(pid "):
        second.prepare()
    first.close()
    second.prepare()
    second.close()
    assert second.dest.read(LOCK_FILE) is None


def test_the_conditional_write_on_s3_lets_one_creator_win(s3_endpoint: str, s3_bucket: str) -> None:
    dest = Destination(f"s3://{s3_bucket}/ds", storage_options={"endpoint_url": s3_endpoint})
    assert dest.create(LOCK_FILE, b"one") is True
    assert dest.create(LOCK_FILE, b"two") is False
    assert dest.read(LOCK_FILE) == b"one"
