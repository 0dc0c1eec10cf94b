"""A tiny tmpfs for the tests: a disk that fills up, or one that is read-only, for real.

Mounting needs root (CI runs as root, as it does for the PostgreSQL server); elsewhere the
tests that need it fail with how to run them, rather than pass unchecked. The mount is
removed however the test ends.

Example (in a test)::

    with tiny_tmpfs(tmp_path / "disk", kilobytes=256) as disk:
        ...  # write under disk until ENOSPC
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["tiny_tmpfs"]


@contextlib.contextmanager
def tiny_tmpfs(
    folder: Path, *, kilobytes: int, read_only: bool = False, owner: str | None = None
) -> Iterator[Path]:
    """``folder``, a new tmpfs of ``kilobytes`` (read-only if asked, owned by ``owner``)."""
    if os.geteuid() != 0:
        pytest.fail(
            "This test mounts a tiny tmpfs (a full or read-only disk, for real), which needs "
            "root: run it as root, as CI does.",
            pytrace=False,
        )
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={kilobytes}k,mode=0777" + (",ro" if read_only else "")
    _run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)])
    try:
        if owner is not None:
            _run(["chown", owner, str(folder)])
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


def _run(args: list[str]) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed: {done.stderr.strip()}", pytrace=False)
