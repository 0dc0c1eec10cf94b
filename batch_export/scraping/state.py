"""The state file: what was submitted, so that no batch is ever submitted (and paid) twice.

One JSON file beside the output (``out.parquet.scrape.json``, or ``--state PATH``), rewritten
whole, atomically and fsynced, at each step (:func:`batch_export.atomic.write_bytes`). It
records the input's digest and the batch options, then for each batch: its input lines, the
digest of their URLs, and

1. ``intent_at`` and ``posts``, written *before* each ``POST /v1/batch``;
2. ``job_id`` (with ``accepted_urls`` and ``invalid_urls``), written as soon as the answer
   comes, or when a lost answer's job is found again on the server;
3. ``part``, the file its job was exported to, once it was.

A rerun reads it back and goes on from there: a batch with a job id is never submitted
again, and one with an intent but no job id is looked for on the server first (see
:mod:`batch_export.scraping.submit`). A rerun with another input or other options is refused
in one sentence rather than mixed in.

Example:

    >>> import pathlib, tempfile
    >>> from batch_export.scraping.inputs import read_urls
    >>> from batch_export.scraping.plan import BatchOptions
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "state.json"
    >>> urls = read_urls(["https://a.example/"])
    >>> state = ScrapeState.open(path, urls=urls, options=BatchOptions())
    >>> ScrapeState.open(path, urls=read_urls(["https://b.example/"]), options=BatchOptions())
    Traceback (most recent call last):
    ...
    batch_export.errors.InvalidInputError: The state file ... was made for another list of \
URLs (1 lines then, 1 now, with other URLs): rerun with the same URLs, or pass --state with \
a new path to start afresh.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batch_export.atomic import check_writable, write_bytes
from batch_export.errors import InvalidInputError, OutputError
from batch_export.scraping.inputs import UrlInput
from batch_export.scraping.plan import BatchOptions, PlannedBatch

__all__ = ["STATE_SUFFIX", "STATE_VERSION", "BatchRecord", "ScrapeState", "default_state_path"]

STATE_VERSION = 1
STATE_SUFFIX = ".scrape.json"
_MAX_STATE_BYTES = 512 * 2**20


def default_state_path(output: str | os.PathLike[str]) -> Path:
    """The state file of an output: beside it, named after it.

    >>> default_state_path("out/items.parquet").name
    'items.parquet.scrape.json'
    """
    path = Path(output)
    return path.with_name(path.name + STATE_SUFFIX)


def now_iso() -> str:
    """The current UTC time, to the microsecond, as the state file records times."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class BatchRecord:
    """One batch as the state file holds it (see the module docstring)."""

    number: int
    round: int
    lines: list[int]
    digest: str
    intent_at: str | None = None
    posts: int = 0
    job_id: str | None = None
    accepted_urls: int | None = None
    invalid_urls: list[str] = field(default_factory=list)
    found_again: bool = False
    part: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["lines"] = _ranges(self.lines)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchRecord:
        return cls(**{**data, "lines": _unranged(data["lines"])})


class ScrapeState:
    """The state file of one scrape, held in memory and saved at every step."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.input: dict[str, Any] = data["input"]
        self.options: dict[str, Any] = data["options"]
        self.batches = [BatchRecord.from_json(batch) for batch in data["batches"]]
        self.lock = threading.RLock()
        self._held: int | None = None

    @property
    def parts_dir(self) -> Path:
        """The folder beside the state file where each job's export is kept."""
        name = self.path.name
        return self.path.with_name((name[:-5] if name.endswith(".json") else name) + ".parts")

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        urls: UrlInput,
        options: BatchOptions,
        hold: bool = True,
    ) -> ScrapeState:
        """The state at ``path``, or a new one; refuse a state made for another run.

        ``hold`` keeps any other run from using it until :meth:`close` (or the process ends).
        """
        path = Path(path)
        fingerprint = {"digest": urls.digest, "lines": len(urls.lines)}
        if not path.exists():
            check_writable(path, option="--state")
            state = cls(
                path, {"input": fingerprint, "options": options.fingerprint(), "batches": []}
            )
            state.save()
        else:
            state = cls(path, _read(path))
            state._check_same(fingerprint, options.fingerprint())
        if hold:
            state._hold()
        return state

    def _hold(self) -> None:
        """Hold the parts folder locked while this process runs: one scrape per state file.

        The lock is the kernel's (``flock``): a killed run leaves none behind.
        """
        try:
            self.parts_dir.mkdir(exist_ok=True)
            self._held = os.open(self.parts_dir, os.O_RDONLY)
        except OSError as error:
            raise OutputError(f"Cannot create {self.parts_dir}: {error.strerror}.") from None
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock, one run at a time by hand
            return
        try:
            fcntl.flock(self._held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.close()
            raise InvalidInputError(
                f"Another scrape is running with the state file {self.path}: let it finish, "
                "or pass --state with another path."
            ) from None

    def close(self) -> None:
        """Let another run take the state file."""
        held, self._held = self._held, None
        if held is not None:
            os.close(held)

    def _check_same(self, fingerprint: dict[str, Any], options: dict[str, Any]) -> None:
        if self.input != fingerprint:
            raise InvalidInputError(
                f"The state file {self.path} was made for another list of URLs "
                f"({self.input.get('lines')} lines then, {fingerprint['lines']} now, with other "
                "URLs): rerun with the same URLs, or pass --state with a new path to start afresh."
            )
        changed = [name for name in options if self.options.get(name) != options[name]]
        if changed:
            said = ", ".join(
                f"{name} {self.options.get(name)!r} then, {options[name]!r} now" for name in changed
            )
            raise InvalidInputError(
                f"The state file {self.path} was made with other options ({said}): rerun with "
                "the same options, or pass --state with a new path to start afresh."
            )

    def save(self) -> None:
        """Write the whole state, atomically and durably (fsynced, folder included)."""
        with self.lock:
            head = {"version": STATE_VERSION, "input": self.input, "options": self.options}
            # One batch a line: a person can read it, a diff shows what a step changed.
            batches = ",\n".join(json.dumps(batch.to_json()) for batch in self.batches)
            text = json.dumps(head)[:-1] + ', "batches": [\n' + batches + "\n]}\n"
            write_bytes(self.path, text.encode("utf-8"), option="--state")

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Change records under the lock; the state is saved when the block ends."""
        with self.lock:
            yield
            self.save()

    def add_round(self, planned: list[PlannedBatch]) -> list[BatchRecord]:
        """Record a round's batches (before any of them is submitted) and save."""
        records = [BatchRecord(b.number, b.round, list(b.lines), b.digest) for b in planned]
        with self.changing():
            self.batches.extend(records)
        return records

    def round_batches(self, round: int) -> list[BatchRecord]:
        """The batches of one round, in number order."""
        return [batch for batch in self.batches if batch.round == round]

    @property
    def rounds(self) -> int:
        """How many rounds were planned (0 before the first)."""
        return 1 + max((batch.round for batch in self.batches), default=-1)

    def claimed(self) -> set[str]:
        """The job ids already recorded for some batch."""
        with self.lock:
            return {batch.job_id for batch in self.batches if batch.job_id is not None}


def _read(path: Path) -> dict[str, Any]:
    problem = None
    try:
        if path.stat().st_size > _MAX_STATE_BYTES:
            problem = "it is far larger than a state file"
        else:
            data = json.loads(path.read_bytes())
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                problem = f"it is not a version {STATE_VERSION} scrape state"
            elif not all(isinstance(data.get(key), dict) for key in ("input", "options")):
                problem = "its input or options are missing"
            else:
                for batch in data.get("batches", []):
                    BatchRecord.from_json(batch)
                return data
    except (OSError, ValueError, TypeError, KeyError) as error:
        problem = f"{type(error).__name__}: {error}"
    raise InvalidInputError(
        f"The state file {path} cannot be used ({problem}): pass --state with another path, "
        "or move it away to start afresh."
    )


def _ranges(lines: list[int]) -> list[list[int]]:
    """Line numbers as ``[first, last]`` runs, so that 1,000 lines take a few bytes."""
    runs: list[list[int]] = []
    for line in lines:
        if runs and line == runs[-1][1] + 1:
            runs[-1][1] = line
        else:
            runs.append([line, line])
    return runs


def _unranged(runs: list[list[int]]) -> list[int]:
    lines: list[int] = []
    for first, last in runs:
        if not (isinstance(first, int) and isinstance(last, int) and 0 < first <= last):
            raise ValueError(f"a run of lines [{first}, {last}] is not a run")
        lines.extend(range(first, last + 1))
    return lines
