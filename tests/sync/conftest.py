"""Fixtures of the sync tests: an emulated account, and an S3 server on loopback (moto).

The account is the emulator serving ``generate_account(jobs=200, processing=3)`` with small
jobs (1 to 5 items), so that a full sync takes about a second. The S3 server is moto's server
mode, started here on 127.0.0.1 with fake credentials; s3fs reaches it through
``endpoint_url``, as it would reach MinIO or R2.
"""

from __future__ import annotations

import functools
import json
import logging
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import s3fs
from moto.server import ThreadedMotoServer

from batch_export.export import Connection
from batch_export.sync import SyncReport, sync
from batch_export.testing import Emulator, generate_account
from tests.conftest import CANARY_KEY, user_env

ACCOUNT_JOBS = 200
PROCESSING = 3


@functools.cache
def account_docs() -> tuple[dict[str, Any], ...]:
    """The emulated account: 200 jobs of 1 to 5 items, the 3 newest still processing."""
    docs = generate_account(
        jobs=ACCOUNT_JOBS, processing=PROCESSING, seed=0, items=(1, 5), markdown_bytes=120
    )
    return tuple(docs)


@functools.cache
def small_docs() -> tuple[dict[str, Any], ...]:
    """A small account over the same four days: 24 jobs, the 2 newest still processing."""
    return tuple(generate_account(jobs=24, processing=2, seed=1, items=(1, 4), markdown_bytes=80))


def expected_rows(docs: tuple[dict[str, Any], ...] | list[dict[str, Any]]) -> dict[str, int]:
    """Items each finished job must have in the dataset, by the job's own counters."""
    return {
        doc["job_id"]: doc["completed_urls"] + doc["failed_urls"] + doc["cancelled_urls"]
        for doc in docs
        if "emulator" not in doc  # the still-processing jobs
    }


@pytest.fixture
def account() -> Iterator[Emulator]:
    """A fresh emulator serving the 200-job account, keyed with the canary."""
    with Emulator(jobs=account_docs(), api_key=CANARY_KEY) as emulator:
        yield emulator


@pytest.fixture
def connection(account: Emulator) -> Connection:
    """How the library reaches the account: no retries, so that failures show at once."""
    return Connection(base_url=account.base_url, api_key=CANARY_KEY, max_retries=0)


@pytest.fixture
def small_account() -> Iterator[Emulator]:
    """A fresh emulator serving the small account, keyed with the canary."""
    with Emulator(jobs=small_docs(), api_key=CANARY_KEY) as emulator:
        yield emulator


@pytest.fixture
def small_env(small_account: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The environment a user of the CLI sets, for the small account."""
    return user_env(small_account, monkeypatch)


@pytest.fixture
def small(small_account: Emulator) -> Connection:
    """How the library reaches the small account."""
    return Connection(base_url=small_account.base_url, api_key=CANARY_KEY, max_retries=0)


Events = list[tuple[str, dict[str, Any]]]


def recorder(sink: Events) -> Any:
    """An ``on_event`` callback that appends each event to ``sink``."""
    return lambda name, fields: sink.append((name, fields))


@dataclass
class Synced:
    """The 200-job account synced once, with one worker: the reference dataset."""

    root: Path
    report: SyncReport
    events: Events


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Synced:
    """The reference dataset; tests only read it (a second sync changes nothing)."""
    root = tmp_path_factory.mktemp("reference")
    events: Events = []
    with Emulator(jobs=account_docs(), api_key=CANARY_KEY) as emulator:
        connection = Connection(base_url=emulator.base_url, api_key=CANARY_KEY, max_retries=0)
        report = sync(root, connection=connection, jobs=1, on_event=recorder(events))
    return Synced(root, report, events)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the whole session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(
    s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> str:
    """A new, empty bucket on the loopback server; fake credentials in the environment."""
    # The suite captures every log record at DEBUG to look for the API key; botocore logs each
    # S3 request at length (and never sees the API key), which would triple the tests' time.
    for name in ("botocore", "aiobotocore", "s3fs", "fsspec"):
        caplog.set_level(logging.INFO, logger=name)
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"sync-{uuid.uuid4().hex[:12]}"
    s3fs.S3FileSystem(endpoint_url=s3_endpoint, skip_instance_cache=True).mkdir(bucket)
    return bucket


def kill_after(process: subprocess.Popen[str], *, exported: int, delay: float) -> None:
    """SIGKILL the sync ``delay`` seconds after it reported ``exported`` jobs exported.

    The sync runs with ``--log-format json``: every line on its stderr is one event.
    """
    assert process.stderr is not None
    seen = 0
    while seen < exported:
        line = process.stderr.readline()
        if not line:
            break  # it finished (or died) first: the caller's checks say which
        assert line.startswith("{"), f"not a JSON event on stderr: {line!r}"
        seen += json.loads(line)["event"] == "job_exported"
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
