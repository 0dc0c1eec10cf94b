"""A dataset root on any fsspec file system, where each file appears only when complete.

How a file is made to appear whole depends on what the file system offers:

- **local disk**: written under ``DEST/_staging/``, flushed to disk, then renamed into place
  (a rename within one file system is atomic);
- **object stores** (``s3://``, ``gs://``, ``az://``, ...): written to a local temporary file,
  then uploaded in one ``put``; an object store has no rename, but an object only becomes
  visible once its upload is complete, and a new upload replaces the old object whole;
- **other file systems**: uploaded to ``DEST/_staging/``, then moved into place, which is as
  atomic as that file system's move.

The local temporary files of a remote destination live in one folder per user
(:data:`LOCAL_STAGING`, or ``local_staging``), named after the destination and the process
(as :mod:`batch_export.atomic` names its temporaries): a failed write removes its file, and
:meth:`Destination.clear_staging` sweeps what killed runs left. Every name there and in
``_staging/`` is short, whatever the job id.

Errors of the file-system layer (``OSError``, botocore's, a plugin's own) become
:class:`~batch_export.errors.OutputError` here, with what to check, in one sentence.

Example:

    >>> import tempfile
    >>> dest = Destination(tempfile.mkdtemp())
    >>> dest.publish_bytes("_markers/j1.json", b"{}")
    >>> dest.list_files("_markers"), dest.read("_markers/j1.json")
    (['_markers/j1.json'], b'{}')
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem

from batch_export.atomic import clean_stale_temporaries, temporary_name
from batch_export.errors import BatchExportError, InvalidInputError, OutputError
from batch_export.sync.layout import STAGING_DIR
from batch_export.sync.stores.native import native_reason

__all__ = ["LOCAL_STAGING", "OBJECT_STORE_PROTOCOLS", "Destination"]

T = TypeVar("T")

OBJECT_STORE_PROTOCOLS: frozenset[str] = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"}
)

# One folder per user: another user's folder of the same name is not ours to write or sweep.
LOCAL_STAGING = Path(tempfile.gettempdir()) / (
    f"batch-export-staging-{os.getuid()}" if hasattr(os, "getuid") else "batch-export-staging"
)


class Destination:
    """The root of a synced dataset: ``url`` is a local path or any fsspec URL.

    ``storage_options`` go to the file system (``endpoint_url``, ``key``, ``anon``, ...).
    Paths given to the methods are relative to the root, with ``/`` separators.
    """

    def __init__(
        self,
        url: str,
        *,
        storage_options: Mapping[str, Any] | None = None,
        local_staging: str | os.PathLike[str] | None = None,
    ) -> None:
        self.url = url
        self.local_staging = Path(local_staging) if local_staging else LOCAL_STAGING
        # Local staged files are named after the destination (a digest of ``url``), so that a
        # sweep takes only its own.
        self.staging_name = hashlib.sha256(url.encode()).hexdigest()[:16]
        self._folders: set[str] = set()
        # Staged names: unique to this object (a random prefix) without a random call a file.
        self._staged_prefix = secrets.token_hex(8)
        self._staged_count = itertools.count()
        try:
            fs, root = fsspec.core.url_to_fs(url, **dict(storage_options or {}))
        except (ImportError, ValueError, TypeError) as error:
            raise InvalidInputError(
                f"Cannot use --dest {url!r}: {error}. For s3:// install s3fs "
                "(pip install 'batch-export[s3]'); check --storage-option names."
            ) from None
        self.fs: Any = fs
        self.root: str = str(root).rstrip("/")
        self.is_local = isinstance(fs, LocalFileSystem)
        if self.is_local and Path(self.root).exists() and not Path(self.root).is_dir():
            raise OutputError(
                f"--dest {url} is a file: give a folder (it is created if it does not exist)."
            )
        protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
        self.is_object_store = bool(protocols & OBJECT_STORE_PROTOCOLS)

    def __repr__(self) -> str:
        return f"Destination({self.url!r})"

    def full_path(self, path: str) -> str:
        """The file system's own path of ``path`` (relative to the root)."""
        return f"{self.root}/{path}"

    def read(self, path: str) -> bytes | None:
        """The content of ``path``, or None when there is no such file."""
        with self._translated("read", path):
            try:
                data: bytes = self.fs.cat_file(self.full_path(path))
            except FileNotFoundError:
                return None
        return data

    def list_files(self, directory: str) -> list[str]:
        """Every file under ``directory``, as paths relative to the root, sorted."""
        with self._translated("list", directory):
            self.fs.invalidate_cache()
            try:
                found = self.fs.find(self.full_path(directory), detail=False)
            except FileNotFoundError:
                return []
        base = self.root + "/"
        relative = (self._strip(str(full)) for full in found)
        return sorted(full[len(base) :] for full in relative if full.startswith(base))

    def delete(self, path: str) -> None:
        """Remove ``path``; a file that is not there is no error."""
        with self._translated("delete", path), suppress(FileNotFoundError):
            self.fs.rm_file(self.full_path(path))

    def create(self, path: str, data: bytes) -> bool:
        """Write ``data`` to ``path`` only if no file is there; return whether it was written.

        Atomic on local disk (``O_EXCL``) and on S3 (a conditional write, ``If-None-Match``);
        elsewhere a look, then a write, which two writers can pass at once.
        """
        with self._translated("create", path):
            if self.is_local:
                full = self.full_path(path)
                self._make_folder(full.rsplit("/", 1)[0])
                try:
                    handle = os.open(full, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    return False
                try:
                    os.write(handle, data)
                finally:
                    os.close(handle)
                return True
            try:
                self.fs.pipe_file(self.full_path(path), data, mode="create")
            except FileExistsError:
                return False
            return True

    def publish_bytes(self, path: str, data: bytes, *, durable: bool = True) -> None:
        """Make ``path`` hold ``data``, appearing whole or not at all."""
        self.publish(path, lambda sink: sink.write(data), durable=durable)

    def publish(self, path: str, write: Callable[[BinaryIO], T], *, durable: bool = True) -> T:
        """Make ``path`` hold what ``write(sink)`` writes, appearing whole or not at all.

        ``write`` runs first, into a file nobody reads; only when it returns is the file put
        in place, replacing any earlier one. Its errors pass through unchanged, except OS
        errors (a full disk), which become :class:`OutputError`. On local disk, ``durable``
        files reach the disk before they appear (a crash of the machine cannot leave them
        empty); others are only as durable as the file system makes them.
        """
        if self.is_local:
            return self._publish_local(path, write, durable=durable)
        local = self._local_temporary(path)
        try:
            with self._writing(path, where="the temporary directory"), local.open("wb") as sink:
                result = write(sink)
            if self.is_object_store:
                with self._translated("upload", path):
                    self.fs.put_file(str(local), self.full_path(path))
            else:
                self._upload_then_move(str(local), path)
            return result
        finally:
            with suppress(OSError):
                local.unlink(missing_ok=True)

    def clear_staging(self) -> int:
        """Remove what interrupted syncs left half-written; return how many files.

        That is ``_staging/`` under the destination, and this destination's files in the local
        staging folder whose process is gone.
        """
        removed = self.list_files(STAGING_DIR)
        for path in removed:
            self.delete(path)
        if self.is_local:
            return len(removed)
        swept = clean_stale_temporaries(self.local_staging / self.staging_name)
        return len(removed) + len(swept)

    def _local_temporary(self, path: str) -> Path:
        """A new local file name for staging ``path``: short, and traceable to this process."""
        with self._writing(path, where="the temporary directory"):
            self.local_staging.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Named as batch_export.atomic names its temporaries, so that its sweep takes them.
        tag = f"{os.getpid()}-{secrets.token_hex(4)}"
        return self.local_staging / temporary_name(self.staging_name, tag)

    def _publish_local(self, path: str, write: Callable[[BinaryIO], T], *, durable: bool) -> T:
        # Plain os calls on str paths: a sync makes three files a job, thousands a run, and
        # pathlib's objects and a uuid4 (a getrandom call) cost 20 us a file, measured.
        staged = self.full_path(
            f"{STAGING_DIR}/{self._staged_prefix}-{next(self._staged_count)}.tmp"
        )
        final = self.full_path(path)
        try:
            with self._writing(path, where="the destination"):
                self._make_folder(self.full_path(STAGING_DIR))
                with open(staged, "wb") as sink:  # noqa: PTH123 (see above)
                    result = write(sink)
                    if durable:
                        sink.flush()
                        # Flushed before the rename, so that a crash of the machine cannot
                        # leave the new name pointing at content that never reached the disk.
                        os.fsync(sink.fileno())
                self._make_folder(final.rsplit("/", 1)[0])
                os.replace(staged, final)  # noqa: PTH105
            return result
        except BaseException:
            with suppress(OSError):
                os.unlink(staged)  # noqa: PTH108
            raise

    def _make_folder(self, folder: str) -> None:
        """Create ``folder`` once; a sync writes thousands of files into a few folders."""
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)  # noqa: PTH103
            self._folders.add(folder)

    def _upload_then_move(self, local: str, path: str) -> None:
        staged = self.full_path(f"{STAGING_DIR}/{uuid.uuid4().hex}.tmp")
        final = self.full_path(path)
        with self._translated("upload", path):
            self.fs.makedirs(staged.rsplit("/", 1)[0], exist_ok=True)
            self.fs.put_file(local, staged)
            self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self.fs.mv(staged, final)

    def _strip(self, full: str) -> str:
        return str(self.fs._strip_protocol(full)).rstrip("/")

    @contextmanager
    def _writing(self, path: str, *, where: str) -> Iterator[None]:
        """An OS error while a file is written (a full disk, a file too large) is an
        OutputError; the writer's own errors pass through."""
        try:
            yield
        except OSError as error:
            raise OutputError(
                f"Cannot write {path} for {self.url}: {_reason(error)}. Check free space and "
                f"permissions in {where}, then rerun."
            ) from None

    @contextmanager
    def _translated(self, action: str, path: str) -> Iterator[None]:
        try:
            yield
        except BatchExportError:
            raise
        except Exception as error:  # a plugin's errors are its own; all mean "cannot write"
            raise OutputError(
                f"Cannot {action} {path} in {self.url}: {_reason(error)}. {self._hint()}"
            ) from None

    def _hint(self) -> str:
        if self.is_local:
            return "Check that the path exists or can be created, and its permissions."
        if self.is_object_store:
            return (
                "Check the bucket name, the credentials (AWS_ACCESS_KEY_ID, "
                "AWS_SECRET_ACCESS_KEY or AWS_PROFILE for s3://) and --endpoint-url."
            )
        return "Check the URL, the credentials and --storage-option values."


def _reason(error: Exception) -> str:
    """What went wrong, in words: an OS error's own text, else the error's type and text; a
    full or read-only disk said as such (:func:`~batch_export.sync.stores.native.native_reason`)."""
    if isinstance(error, OSError) and error.strerror:
        return native_reason(error)
    text = " ".join(str(error).split())  # one line, whatever the plugin put in its message
    text = text if len(text) <= 300 else text[:297] + "..."
    said = f"{type(error).__name__}: {text}" if text else type(error).__name__
    return native_reason(error, said=said)
