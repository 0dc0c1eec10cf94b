"""The Parquet dataset's writer lock: one sync at a time per destination, the others refused.

A Parquet dataset has no transactions: two syncs writing one at once could each remove what
the other just wrote (an items file taken for an orphan, a jobs row replaced under a reader).
So a sync takes the dataset's lock before it cleans or writes anything and keeps it until it
ends; a second sync meanwhile stops at once with one sentence that names the holder::

    DEST is being synced by another process (pid 4242 on etl-1, since 2026-06-01T10:00:03Z):
    run one sync at a time per destination, or wait for that one to end.

The lock is the file ``DEST/_sync.lock``, JSON that names its holder (pid, host, start time,
a token of its own):

- **local or mounted folder**: the file is also held with the operating system's lock
  (``flock``) for the whole run. The kernel drops it when its process ends, however it ends,
  so a killed sync never blocks the next. Where the file system has no ``flock``, the rules
  of the next point apply.
- **object store** (``s3://``, ...): the file is created only if absent (a conditional write,
  ``If-None-Match``) and rewritten by its holder every :data:`REFRESH_SECONDS`. A lock is
  stale, and the next sync takes it over, when its holder is a process of this host that is
  gone (or the host started again since), or when it was not rewritten for
  :data:`STALE_AFTER` (10 minutes). A holder that finds its lock taken over stops loading.

Example:

    >>> import tempfile
    >>> from batch_export.sync.stores.destination import Destination
    >>> dest = Destination(tempfile.mkdtemp())
    >>> first, second = WriterLock(dest), WriterLock(dest)
    >>> first.acquire()
    >>> second.acquire()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    batch_export.errors.OutputError: ... is being synced by another process (pid ...
    >>> first.release(); second.acquire(); second.release()
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from batch_export.errors import OutputError
from batch_export.sync.stores.destination import Destination
from batch_export.sync.stores.native import native_reason
from batch_export.text import printable
from batch_export.version import __version__

try:  # POSIX only; elsewhere every folder follows the object-store rules
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_FILE", "REFRESH_SECONDS", "STALE_AFTER", "Holder", "WriterLock"]

LOCK_FILE = "_sync.lock"
STALE_AFTER = timedelta(minutes=10)
REFRESH_SECONDS = 60.0
# The file systems that may answer flock with "not here": the object-store rules apply then.
_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def _boot_id() -> str:
    """What tells this boot of the host from the next (Linux); empty where unknown."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True, kw_only=True)
class Holder:
    """Who holds a dataset's lock, as its lock file says."""

    pid: int
    host: str
    boot_id: str
    started_at: str
    refreshed_at: str
    token: str
    tool_version: str

    @classmethod
    def me(cls) -> Holder:
        """This process, now."""
        now = datetime.now(UTC).isoformat()
        return cls(
            pid=os.getpid(),
            host=socket.gethostname(),
            boot_id=_boot_id(),
            started_at=now,
            refreshed_at=now,
            token=secrets.token_hex(8),
            tool_version=__version__,
        )

    def to_json(self) -> bytes:
        """The lock file's content."""
        return (json.dumps(asdict(self), indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> Holder | None:
        """The holder a lock file names; None when it is not a lock file of ours."""
        try:
            holder = cls(**json.loads(data))
            datetime.fromisoformat(holder.refreshed_at)
        except (TypeError, ValueError, AttributeError):
            return None
        return holder if isinstance(holder.pid, int) else None

    def is_alive(self, *, now: datetime, stale_after: timedelta) -> bool:
        """Whether the lock still counts: its process may still run and it is fresh."""
        refreshed = datetime.fromisoformat(self.refreshed_at)
        if refreshed.tzinfo is None or now - refreshed > stale_after:
            return False
        if self.host != socket.gethostname():
            return True  # another host: only the age tells
        if self.boot_id and self.boot_id != _boot_id():
            return False  # this host started again since: that process is gone
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's process
        return True

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host}, since {self.started_at}"


class WriterLock:
    """The lock of one dataset, taken by :meth:`acquire`, checked by :meth:`check`."""

    def __init__(
        self,
        dest: Destination,
        *,
        stale_after: timedelta = STALE_AFTER,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.dest = dest
        self.stale_after = stale_after
        self.refresh_seconds = refresh_seconds
        self.holder: Holder | None = None
        self._fd: int | None = None
        self._lost: str | None = None
        self._stop = threading.Event()
        self._refresher: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`OutputError` naming the live holder."""
        if self.holder is not None:
            return
        me = Holder.me()
        if self.dest.is_local and fcntl is not None and self._acquire_flock(me):
            self.holder = me
            return
        self._acquire_file(me)
        self.holder = me
        self._stop.clear()
        self._refresher = threading.Thread(
            target=self._refresh_until_released, name="sync-lock", daemon=True
        )
        self._refresher.start()

    def check(self) -> None:
        """Raise :class:`OutputError` if another sync took this lock over (a stale holder)."""
        if self._lost is not None:
            raise OutputError(
                f"{self.dest.url} was taken over by another sync ({self._lost}) after this one "
                f"could not refresh its lock for {self.stale_after}: this sync stops loading; "
                "rerun it when that one ends."
            )

    def release(self) -> None:
        """Give the lock back (the file removed); nothing when not held."""
        if self.holder is None:
            return
        self._stop.set()
        if self._refresher is not None:
            self._refresher.join(timeout=30)
            self._refresher = None
        with contextlib.suppress(OutputError, OSError):
            if self._fd is not None:
                # Removed while still held: see the inode check in _acquire_flock.
                Path(self.dest.full_path(LOCK_FILE)).unlink()
            elif self._lost is None and self._read() == self.holder:
                self.dest.delete(LOCK_FILE)
        if self._fd is not None:
            os.close(self._fd)  # the OS lock goes with it
            self._fd = None
        self.holder = None

    def _refusal(self, holder: Holder | None) -> OutputError:
        who = printable(str(holder)) if holder is not None else "its lock file cannot be read"
        return OutputError(
            f"{self.dest.url} is being synced by another process ({who}): run one sync at a "
            f"time per destination, or wait for that one to end (a lock not refreshed for "
            f"{self.stale_after} is taken over; on local disk, one whose process ended)."
        )

    def _acquire_flock(self, me: Holder) -> bool:
        """The OS lock on the local lock file; False where the file system has none."""
        assert fcntl is not None
        path = Path(self.dest.full_path(LOCK_FILE))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for _ in range(8):
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as error:
                    content = os.pread(fd, 4096, 0)
                    os.close(fd)
                    if error.errno in _NO_FLOCK:
                        return False
                    raise self._refusal(Holder.from_json(content)) from None
                # The holder before us removes the file as it lets go: a lock on the
                # removed file is no lock. Open the file of that name again.
                if os.fstat(fd).st_ino != _inode(path):
                    os.close(fd)
                    continue
                os.ftruncate(fd, 0)
                os.pwrite(fd, me.to_json(), 0)
                self._fd = fd
                return True
        except OSError as error:
            raise OutputError(
                f"Cannot take the lock {LOCK_FILE} of {self.dest.url}: {native_reason(error)}. "
                "Check that the folder can be written."
            ) from None
        raise self._refusal(None)

    def _acquire_file(self, me: Holder) -> None:
        """The lock file created only if absent; a stale one taken over, once."""
        for _ in range(2):
            if self.dest.create(LOCK_FILE, me.to_json()):
                return
            data = self.dest.read(LOCK_FILE)
            if data is None:
                continue  # released meanwhile
            holder = Holder.from_json(data)
            now = datetime.now(UTC)
            if holder is not None and holder.is_alive(now=now, stale_after=self.stale_after):
                raise self._refusal(holder)
            if self.dest.read(LOCK_FILE) == data:  # still the stale one: take it over
                self.dest.delete(LOCK_FILE)
        raise self._refusal(self._read())

    def _read(self) -> Holder | None:
        data = self.dest.read(LOCK_FILE)
        return None if data is None else Holder.from_json(data)

    def _refresh_until_released(self) -> None:
        """Rewrite the lock file every ``refresh_seconds`` while held, so it never looks stale."""
        while not self._stop.wait(self.refresh_seconds):
            holder = self.holder
            if holder is None:
                return
            try:
                current = self._read()
                if current is None or current.token != holder.token:
                    self._lost = printable(str(current)) if current else "its lock file removed"
                    return
                fresh = replace(holder, refreshed_at=datetime.now(UTC).isoformat())
                self.dest.publish_bytes(LOCK_FILE, fresh.to_json(), durable=False)
                self.holder = fresh
            except (OutputError, OSError):
                continue  # a passing failure: the next round tries again


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None
