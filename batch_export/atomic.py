"""Write a file completely or not at all.

:func:`atomic_output` hands out a temporary file beside the destination and moves it into
place only when the block ends cleanly, so an interrupted or failed export never leaves a
partial file where the output belongs, and never clobbers the good file that was there.
:func:`check_writable` fails early, before any network work, when the destination cannot be
written; :func:`clean_stale_temporaries` removes what killed runs left behind. Every OS error
met while writing becomes an :class:`~batch_export.errors.OutputError` naming the path.

Temporary files are named ``.<name>.batch-export-<pid>-<random>.tmp``: hidden, beside the
destination (``os.replace`` is atomic only within one file system), and traceable to the
process that made them. :func:`atomic_output`'s docstring shows it at work.
"""

from __future__ import annotations

import io
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from batch_export.errors import OutputError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "STALE_AFTER_SECONDS",
    "atomic_output",
    "check_writable",
    "clean_stale_temporaries",
    "temporary_name",
    "write_bytes",
]

log = logging.getLogger(__name__)

# A temporary older than this is stale even when its pid is alive: pids are reused (after a
# reboot, or in containers where every run is pid 1), and no export stays silent this long.
STALE_AFTER_SECONDS = 24 * 3600.0

_MARKER = ".batch-export-"
_BUFFER_SIZE = 1024 * 1024
# Most file systems take names of at most 255 bytes; a temporary's name is the output's with
# a prefix and a suffix, so the output's part is cut to leave room for them.
_NAME_MAX = 255
# Names of the temporaries this process is writing right now, which no cleanup may remove
# (names, not paths: one folder can be spelled many ways, and the random part is unique).
_LIVE: set[str] = set()


@contextmanager
def atomic_output(path: str | os.PathLike[str], *, option: str = "-o") -> Iterator[BinaryIO]:
    """Yield a binary file that replaces ``path`` when the block ends without an exception.

    On any exception (``KeyboardInterrupt`` included) the temporary file is deleted and the
    exception re-raised; a previous file at ``path`` stays as it was. Stale temporaries of
    ``path`` from killed runs are removed first. Messages name ``option`` as the way to
    choose another path.

    Example:

        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "out.jsonl"
        >>> with atomic_output(path) as sink:
        ...     _ = sink.write(b'{"a":1}\\n')
        >>> path.read_text()
        '{"a":1}\\n'
    """
    destination = Path(path)
    check_writable(destination, option=option)
    clean_stale_temporaries(destination)
    temporary, sink = _open_temporary(destination, option)
    _LIVE.add(temporary.name)
    try:
        yield sink
        _commit(sink, temporary, destination)
    except BaseException:
        _discard(sink, temporary)
        raise
    finally:
        _LIVE.discard(temporary.name)


def write_bytes(path: str | os.PathLike[str], data: bytes, *, option: str = "-o") -> None:
    """Make the file at ``path`` hold ``data``, whole or not at all (see :func:`atomic_output`).

    Example:

        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "summary.json"
        >>> write_bytes(path, b"{}")
        >>> path.read_bytes()
        b'{}'
    """
    with atomic_output(path, option=option) as sink:
        sink.write(data)


def temporary_name(name: str, tag: str) -> str:
    """The hidden name of a temporary of ``name``, within the file system's name limit.

    ``tag`` (a pid and a random part, at most 19 characters) makes it unique; the output's
    name is cut, at a character boundary, so that the whole fits in 255 bytes.

    Example:

        >>> len(temporary_name("x" * 250 + ".parquet", "4194304-0a1b2c3d").encode()) <= 255
        True
    """
    return f".{_stem(name)}{_MARKER}{tag}.tmp"


def _stem(name: str) -> str:
    """The part of an output's name that its temporaries carry (all of it, unless long)."""
    room = _NAME_MAX - len(f".{_MARKER}{'9' * 10}-{'f' * 8}.tmp")
    stem = name.encode("utf-8", errors="surrogateescape")[:room]
    return stem.decode("utf-8", errors="ignore")


def check_writable(path: str | os.PathLike[str], *, option: str = "-o") -> None:
    """Raise :class:`OutputError` unless a file can be written at ``path``.

    Checks that the folder exists, is a folder and is writable, and that ``path`` is not a
    folder or another non-regular file (a device, a pipe) that a rename would destroy.

    Example:

        >>> check_writable("/no/such/folder/out.csv")
        Traceback (most recent call last):
        ...
        batch_export.errors.OutputError: Output folder '/no/such/folder' does not exist: \
create it first or choose another -o path.
    """
    problem = _output_problem(Path(path), option)
    if problem is not None:
        raise OutputError(problem)


def clean_stale_temporaries(
    path: str | os.PathLike[str], *, max_age: float = STALE_AFTER_SECONDS
) -> list[str]:
    """Remove temporaries of ``path`` left by killed runs; return the paths removed.

    A temporary is stale when the process named by its pid is gone, or when it is older
    than ``max_age`` seconds. Removal is best effort: what cannot be removed is logged.

    Example:

        >>> import pathlib, tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / ".out.csv.batch-export-999999999-0a1b2c3d.tmp").write_bytes(b"")
        >>> [pathlib.Path(p).name for p in clean_stale_temporaries(folder / "out.csv")]
        ['.out.csv.batch-export-999999999-0a1b2c3d.tmp']
    """
    destination = Path(path)
    folder = destination.parent
    pattern = re.compile(
        rf"\.{re.escape(_stem(destination.name))}{re.escape(_MARKER)}(\d+)-[0-9a-z_]+\.tmp\Z"
    )
    removed: list[str] = []
    try:
        with os.scandir(folder) as scan:
            entries = list(scan)
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = pattern.match(entry.name)
        candidate = folder / entry.name
        if match is None or entry.name in _LIVE:
            continue
        if _is_stale(entry, int(match.group(1)), now=now, max_age=max_age):
            try:
                candidate.unlink()
            except FileNotFoundError:
                continue  # another run cleaned it first
            except OSError as error:
                log.warning("Could not remove stale temporary %s: %s", candidate, error.strerror)
                continue
            log.info("Removed stale temporary %s", candidate)
            removed.append(str(candidate))
    return removed


class _TemporarySink(io.BufferedWriter):
    """The temporary file as writers see it.

    OS errors become :class:`OutputError`. Once discarded, writes are dropped instead of
    failing: a writer left open by the failure (``pyarrow.parquet.ParquetWriter`` closes
    itself when collected) must not raise from its finalizer.
    """

    def __init__(self, raw: io.FileIO, destination: Path) -> None:
        super().__init__(raw, buffer_size=_BUFFER_SIZE)
        self.destination = destination
        self.discarded = False

    def write(self, buffer: ReadableBuffer, /) -> int:
        if self.discarded:
            return memoryview(buffer).nbytes
        try:
            return super().write(buffer)
        except OSError as error:
            raise _output_error(self.destination, error) from error

    def flush(self) -> None:
        if self.discarded:
            return
        try:
            super().flush()
        except OSError as error:
            raise _output_error(self.destination, error) from error


def _output_problem(destination: Path, option: str) -> str | None:
    """What makes ``destination`` unwritable, as a message for the user; None if nothing."""
    folder = destination.parent
    try:
        if destination.is_dir():
            example = destination / "export.parquet"
            return (
                f"Output path '{destination}' is a folder: name a file in it, "
                f"e.g. {option} {example}."
            )
        if destination.exists() and not destination.is_file():
            return (
                f"Output path '{destination}' is not a regular file (a device or pipe?): "
                f"choose another {option} path."
            )
        if not folder.exists():
            return (
                f"Output folder '{folder}' does not exist: "
                f"create it first or choose another {option} path."
            )
        if not folder.is_dir():
            return f"Output folder '{folder}' is not a folder: choose another {option} path."
    except OSError as error:
        return _output_error(destination, error, option).message
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f"Output folder '{folder}' is not writable: "
            f"change its permissions or choose another {option} path."
        )
    return None


def _open_temporary(destination: Path, option: str) -> tuple[Path, _TemporarySink]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        name = temporary_name(destination.name, f"{os.getpid()}-{secrets.token_hex(4)}")
        temporary = destination.parent / name
        try:
            # 0o666 lets the umask decide, as for any new file (mkstemp would force 0o600).
            descriptor = os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue
        except OSError as error:
            raise _output_error(destination, error, option) from error
        return temporary, _TemporarySink(io.FileIO(descriptor, "wb"), destination)
    raise OutputError(f"Cannot create a temporary file beside '{destination}': too many exist.")


def _commit(sink: _TemporarySink, temporary: Path, destination: Path) -> None:
    sink.flush()
    try:
        os.fsync(sink.fileno())
        sink.close()
        temporary.replace(destination)
    except OSError as error:
        raise _output_error(destination, error) from error
    _fsync_folder(destination.parent)


def _discard(sink: _TemporarySink, temporary: Path) -> None:
    sink.discarded = True
    # The data is being thrown away: the exception that brought us here is what matters.
    with suppress(OSError, OutputError):
        sink.close()
    try:
        temporary.unlink(missing_ok=True)
    except OSError as error:
        log.warning("Could not remove temporary %s: %s", temporary, error.strerror)


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable; not every platform can open or sync a folder."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def _is_stale(entry: os.DirEntry[str], pid: int, *, now: float, max_age: float) -> bool:
    try:
        info = entry.stat(follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISREG(info.st_mode):
        return False
    if now - info.st_mtime > max_age:
        return True
    if pid == os.getpid():
        return True  # not in _LIVE, so an earlier process with our pid left it
    return not _pid_alive(pid)


def _pid_alive(pid: int) -> bool:
    # On Windows os.kill(pid, 0) would terminate the process: rely on the age there.
    if os.name == "nt":
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by someone else
    except (OverflowError, OSError):
        return False
    return True


def _output_error(destination: Path, error: OSError, option: str = "-o") -> OutputError:
    reason = error.strerror or str(error)
    return OutputError(
        f"Cannot write '{destination}': {reason}. "
        f"Nothing was changed there: fix the cause or choose another {option} path."
    )
