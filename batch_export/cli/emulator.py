"""The `emulator` command: serve the emulated API on 127.0.0.1 until stopped."""

from __future__ import annotations

import contextlib
import errno
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from batch_export.api import API_KEY_ENV
from batch_export.atomic import write_bytes
from batch_export.connection import option_name
from batch_export.errors import OutputError
from batch_export.testing.faults import Faults
from batch_export.testing.jobs import JobDoc, generate_account, load_jobs
from batch_export.testing.sample import sample_jobs
from batch_export.testing.server import Emulator
from batch_export.testing.submit import SubmitSettings

__all__ = ["emulator"]

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_API_KEY = "demo-key"
_POLL_SECONDS = 0.1
# The faults that strike a share of the requests: each a field of Faults, and its help.
_RATES: tuple[tuple[str, str], ...] = (
    ("throttle_rate", "Share of requests answered 429."),
    (
        "server_error_rate",
        "Share of requests answered 500/502/503/504 (some with an HTML gateway page).",
    ),
    ("drop_rate", "Share of answers cut off mid-body."),
    (
        "truncate_rate",
        "Share of answers whose JSON body is cut short, with a matching Content-Length.",
    ),
)
_RATE_FLAGS = (
    ", ".join(option_name(name) for name, _ in _RATES[:-1]) + " and " + option_name(_RATES[-1][0])
)


def _rate_options(function: F) -> F:
    """Stack the options of :data:`_RATES`, in their order: each a share from 0 to 1."""
    for name, help in reversed(_RATES):
        function = click.option(
            option_name(name), type=click.FloatRange(0.0, 1.0), default=0.0, help=help
        )(function)
    return function


class _StopFlag:
    """A signal handler that only takes note; the serving loop polls it.

    Raising from the handler instead could land an exception in the middle of the cleanup.
    """

    def __init__(self) -> None:
        self.raised = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.raised = True


@contextlib.contextmanager
def _handling_signals(handler: _StopFlag) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``handler``; restore the previous handlers afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _load(data: tuple[Path, ...], generate: int, seed: int) -> list[JobDoc]:
    try:
        docs = load_jobs(*data)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--data'") from error
    if generate:
        docs += generate_account(jobs=generate, processing=min(3, generate), seed=seed)
    return docs if data or generate else list(sample_jobs().values())


def _write_ready_file(path: Path, base_url: str) -> None:
    """Write the URL whole or not at all: readers never see half of it."""
    try:
        write_bytes(path, (base_url + "\n").encode("utf-8"), option="--ready-file")
    except OutputError as error:
        raise click.BadParameter(error.message, param_hint="'--ready-file'") from error


def _start(server: Emulator, port: int) -> None:
    try:
        server.start()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            message = f"127.0.0.1:{port} is already in use; choose another, or 0 for a free one."
            raise click.BadParameter(message, param_hint="'--port'") from error
        raise click.ClickException(f"Cannot listen on 127.0.0.1:{port}: {error}") from error


def _serve(server: Emulator, port: int, ready_file: Path | None) -> None:
    """Serve until SIGINT or SIGTERM, with the ready file present exactly while serving."""
    if ready_file is not None:
        ready_file.unlink(missing_ok=True)  # a stale file must not look like this run's
    stop = _StopFlag()
    with _handling_signals(stop):
        _start(server, port)
        try:
            click.echo(
                f"Emulator serving {server.job_count} jobs at {server.base_url} (Ctrl-C to stop)"
            )
            if ready_file is not None:
                _write_ready_file(ready_file, server.base_url)
            while not stop.raised:
                time.sleep(_POLL_SECONDS)
        finally:
            server.stop()
            if ready_file is not None:
                ready_file.unlink(missing_ok=True)


@click.command("emulator")
@click.option(
    "--data",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A folder of job documents (*.json) or one file to serve; repeat for more.",
)
@click.option(
    "--generate",
    type=click.IntRange(min=0),
    default=0,
    help="Also serve N generated jobs of one account (3 of them still processing).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 (the only address served); 0 takes a free one.",
)
@click.option(
    "--api-key",
    envvar=API_KEY_ENV,
    show_envvar=True,
    default=DEFAULT_API_KEY,
    show_default=True,
    help="The key that requests must send as X-Api-Key.",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the base URL to this file once listening (removed on stop).",
)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Delay every answer.")
@_rate_options
@click.option("--reorder", is_flag=True, help="Shuffle a processing job's results on every poll.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the faults and of --generate."
)
@click.option(
    "--submit",
    is_flag=True,
    help="Also take POST /v1/batch, DELETE and GET /v1/usage/concurrency (for `scrape`).",
)
@click.option(
    "--balance",
    type=click.IntRange(min=0),
    help="With --submit: requests the account may be charged; then 402.",
)
def emulator(
    data: tuple[Path, ...],
    generate: int,
    port: int,
    api_key: str,
    ready_file: Path | None,
    seed: int,
    submit: bool,
    balance: int | None,
    **faults: Any,
) -> None:
    """Serve the emulated Geonode Scraper API on 127.0.0.1 until Ctrl-C or SIGTERM.

    Serves the jobs of every --data and --generate; with neither, the three sample jobs of
    sample_data/. Point batch-export at the printed URL with SCRAPER_API_BASE_URL and the same
    API key. The fault options make it misbehave on purpose, the same way for the same --seed.

    \b
    Example:
        batch-export emulator --data sample_data --port 8765 &
        export SCRAPER_API_BASE_URL=http://127.0.0.1:8765 GEONODE_SCRAPER_API_KEY=demo-key
        batch-export export 9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019 -o small.parquet
    """
    try:  # the other options (--latency-ms, the rates, --reorder) are Faults' fields
        chosen = Faults(seed=seed, **faults)
    except ValueError as error:  # the ranges are click's: only the sum can be wrong here
        total = sum(faults[name] for name, _ in _RATES)
        message = f"{_RATE_FLAGS} add up to {total:g}; at most 1 is possible."
        raise click.UsageError(message) from error
    settings = SubmitSettings(seed=seed, balance=balance) if submit else None
    jobs = _load(data, generate, seed)
    server = Emulator(jobs=jobs, api_key=api_key, faults=chosen, port=port, submit=settings)
    _serve(server, port, ready_file)
