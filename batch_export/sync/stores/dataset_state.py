"""What a destination holds: its layout version, which files each job has, and its markers.

The sync reads the state once at the start, with one listing per directory, and keeps it up
to date as it works: deciding what to export and what to remove costs no request per job
(each marker's name carries the token that the plan compares).

Which files a reader trusts, and why an item file without its jobs row is safe to remove, is
the contract of :mod:`batch_export.sync.run`; this module only finds them.

Example:

    >>> import tempfile
    >>> from batch_export.sync.stores.destination import Destination
    >>> state = DatasetState.scan(Destination(tempfile.mkdtemp()))
    >>> state.orphans(), state.has_layout
    ([], False)
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field

from batch_export.errors import OutputError
from batch_export.sync.layout import (
    ITEMS_DIR,
    JOBS_DIR,
    LAYOUT_FILE,
    LAYOUT_VERSION,
    MARKERS_DIR,
    job_id_of,
    layout_document,
    token_of,
)
from batch_export.sync.stores.destination import Destination
from batch_export.version import __version__

__all__ = ["DatasetState"]

# Only files of the layout's own shape are ever considered, so that anything else a user
# keeps under DEST is left alone.
_DATA_FILE = re.compile(r"(items|jobs)/date=\d{4}-\d{2}-\d{2}/[A-Za-z0-9][A-Za-z0-9_-]*\.parquet")
_MARKER_FILE = re.compile(r"_markers/[A-Za-z0-9][A-Za-z0-9_-]*\.[0-9a-f]+\.json")


@dataclass(kw_only=True)
class DatasetState:
    """The files of a dataset, by job id, as listed at the start of a sync."""

    items: dict[str, set[str]] = field(default_factory=dict)
    jobs_rows: dict[str, set[str]] = field(default_factory=dict)
    markers: dict[str, set[str]] = field(default_factory=dict)
    has_layout: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def scan(cls, dest: Destination) -> DatasetState:
        """List the dataset's items, jobs rows and markers, and check its layout version."""
        state = cls()
        for path in dest.list_files(ITEMS_DIR) + dest.list_files(JOBS_DIR):
            if _DATA_FILE.fullmatch(path):
                state.add(path)
        for path in dest.list_files(MARKERS_DIR):
            if _MARKER_FILE.fullmatch(path):
                state.add(path)
        state.has_layout = _check_layout(dest)
        if not state.has_layout and (state.items or state.jobs_rows or state.markers):
            raise OutputError(
                f"{dest.url} holds items/, jobs/ or _markers/ files but no {LAYOUT_FILE}: it "
                "was not written by `batch-export sync`. Choose an empty or new --dest."
            )
        return state

    def add(self, path: str) -> None:
        """Record that ``path`` (an items file, jobs row or marker) now exists."""
        with self._lock:
            self._by_job(path).setdefault(job_id_of(path), set()).add(path)

    def discard(self, path: str) -> None:
        """Record that ``path`` is gone."""
        with self._lock:
            by_job = self._by_job(path)
            paths = by_job.get(job_id_of(path), set())
            paths.discard(path)
            if not paths:
                by_job.pop(job_id_of(path), None)

    def _by_job(self, path: str) -> dict[str, set[str]]:
        top = path.split("/", 1)[0]
        return {ITEMS_DIR: self.items, JOBS_DIR: self.jobs_rows, MARKERS_DIR: self.markers}[top]

    def files_of(self, job_id: str) -> tuple[set[str], set[str], set[str]]:
        """A copy of the items files, jobs rows and markers that ``job_id`` has now."""
        with self._lock:
            return (
                set(self.items.get(job_id, ())),
                set(self.jobs_rows.get(job_id, ())),
                set(self.markers.get(job_id, ())),
            )

    def tokens(self) -> dict[str, set[str]]:
        """The tokens of each job's markers, from their names."""
        with self._lock:
            return {job: {token_of(p) for p in paths} for job, paths in self.markers.items()}

    def orphans(self) -> list[str]:
        """Items files without the jobs row of the same job and day: never trusted, removable.

        They are what a sync killed between writing a job's items and its jobs row leaves.
        """
        rows = {path for paths in self.jobs_rows.values() for path in paths}
        return sorted(
            path
            for paths in self.items.values()
            for path in paths
            if JOBS_DIR + path[len(ITEMS_DIR) :] not in rows
        )

    def whole(self) -> set[str]:
        """The jobs that have an items file and the jobs row of the same day."""
        rows = {path for paths in self.jobs_rows.values() for path in paths}
        return {
            job_id
            for job_id, paths in self.items.items()
            if any(JOBS_DIR + path[len(ITEMS_DIR) :] in rows for path in paths)
        }

    def write_layout(self, dest: Destination) -> None:
        """Write ``_layout.json`` if the dataset has none yet (its first sync)."""
        if not self.has_layout:
            document = layout_document(__version__)
            dest.publish_bytes(LAYOUT_FILE, (json.dumps(document, indent=2) + "\n").encode())
            self.has_layout = True


def _check_layout(dest: Destination) -> bool:
    data = dest.read(LAYOUT_FILE)
    if data is None:
        return False
    try:
        version = json.loads(data).get("layout_version")
    except (ValueError, AttributeError):
        version = None
    if version != LAYOUT_VERSION:
        raise OutputError(
            f"{dest.url} holds a dataset of layout version {version!r}; this batch-export "
            f"({__version__}) writes layout version {LAYOUT_VERSION}. Use the batch-export "
            "that wrote it, or sync into a new --dest."
        )
    return True
