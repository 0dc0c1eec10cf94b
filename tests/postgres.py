"""A real PostgreSQL server for the tests, started in a temp directory and stopped after.

:func:`running_postgres` runs ``initdb`` and ``pg_ctl`` from the server binaries (Debian's
``postgresql`` package puts them in ``/usr/lib/postgresql/<version>/bin``; ``make postgres``
installs it as root). PostgreSQL refuses to run as root, so as root the server runs as an
unprivileged user (``nobody``) through ``runuser``. It listens on 127.0.0.1 on a free port,
with ``trust`` authentication, its socket in its own directory, and durability off (a test
server loses nothing that matters on a crash).

When the binaries are missing, the tests fail with how to install them in CI (``CI=true``) or
as root (where ``make postgres`` would have installed them), and are skipped otherwise.

Example (in a test module)::

    @pytest.fixture(scope="session")
    def postgres() -> Iterator[PostgresServer]:
        with running_postgres() as server:
            yield server
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PostgresServer", "find_server_binaries", "running_postgres"]

DATABASE = "batch_export_test"
SUPERUSER = "postgres"
_UNPRIVILEGED = "nobody"
_MISSING = (
    "PostgreSQL's server binaries (initdb, pg_ctl) were not found on PATH or in "
    "/usr/lib/postgresql/*/bin: run `make postgres` (as root: apt-get install postgresql)."
)


@dataclass(frozen=True)
class PostgresServer:
    """A running test server: where it listens and how to reach its test database."""

    host: str
    port: int
    database: str
    bin_dir: Path

    def url(self, *, user: str = SUPERUSER, database: str | None = None) -> str:
        """The ``postgresql://`` URL of a database as ``user`` (no password: trust auth)."""
        return f"postgresql://{user}@{self.host}:{self.port}/{database or self.database}"

    def psql(self, sql: str, *, user: str = SUPERUSER) -> str:
        """Run ``sql`` with the psql client, as a user would; return its unaligned output."""
        client = shutil.which("psql") or str(self.bin_dir / "psql")
        args = [client, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]
        done = subprocess.run(
            [*args, self.url(user=user)], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout


def find_server_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, newest version first; None if absent."""
    on_path = shutil.which("pg_ctl")
    if on_path:
        # Resolved: a symlink on PATH points into the folder that also holds createdb.
        folder = Path(on_path).resolve().parent
        if (folder / "initdb").exists() and (folder / "createdb").exists():
            return folder
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _missing_binaries() -> None:
    # A failure, not a skip: a skipped warehouse test would pass unchecked.
    pytest.fail(_MISSING, pytrace=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _as_server_user(args: list[str]) -> list[str]:
    """``args`` run as the unprivileged user when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", _UNPRIVILEGED, "--", *args]


def _run(args: list[str], *, what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """Start a throwaway PostgreSQL server with a test database; stop it however we leave."""
    bin_dir = find_server_binaries()
    if bin_dir is None:
        _missing_binaries()
        raise AssertionError("unreachable")
    root = Path(tempfile.mkdtemp(prefix="batch-export-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, user=_UNPRIVILEGED)
    data, port = root / "data", _free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", SUPERUSER]
    _run(_as_server_user([*initdb, "-E", "UTF8", "--no-sync", "--no-instructions"]), what="initdb")
    settings = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={root} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=40 -c shared_buffers=32MB"
    )
    pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log")]
    try:
        _run(_as_server_user([*pg_ctl, "-o", settings, "-w", "-t", "60", "start"]), what="pg_ctl")
        createdb = [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
        _run([*createdb, "-U", SUPERUSER, DATABASE], what="createdb")
        yield PostgresServer(host="127.0.0.1", port=port, database=DATABASE, bin_dir=bin_dir)
    finally:
        subprocess.run(
            _as_server_user([*pg_ctl, "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            timeout=60,
            check=False,
        )
        shutil.rmtree(root, ignore_errors=True)
