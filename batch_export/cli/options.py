"""Options shared by several commands, declared once and stacked as decorators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from batch_export.client import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL
from batch_export.export import Connection
from batch_export.fetcher import MAX_PAGE_SIZE

__all__ = ["connection_from", "connection_options", "quiet_option"]

F = TypeVar("F", bound=Callable[..., Any])

_CONNECTION_OPTIONS = [
    click.option(
        "--base-url",
        envvar=BASE_URL_ENV,
        show_envvar=True,
        help=f"API base URL [default: {DEFAULT_BASE_URL}].",
    ),
    click.option(
        "--api-key",
        envvar=API_KEY_ENV,
        show_envvar=True,
        help="API key, sent as X-Api-Key. Prefer the environment variable: a flag shows in `ps`.",
    ),
    click.option(
        "--page-size",
        type=click.IntRange(1, MAX_PAGE_SIZE),
        default=MAX_PAGE_SIZE,
        show_default=True,
        help="Items per page requested from the API (1 to 50).",
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(1, 64),
        default=8,
        show_default=True,
        help="Pages fetched at once; lowered automatically while the API answers 429.",
    ),
    click.option(
        "--max-retries",
        type=click.IntRange(0, 50),
        default=7,
        show_default=True,
        help="Retries of a request that failed for a passing reason (429, 5xx, network).",
    ),
    click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="Wait for an unfinished job, or refuse it at once (exit 5).",
    ),
    click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=3600.0,
        show_default=True,
        help="Seconds to wait for the job to finish before giving up (exit 5).",
    ),
    click.option(
        "--request-timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=60.0,
        show_default=True,
        help="Seconds to wait for one API answer before retrying it.",
    ),
    click.option(
        "--allow-insecure-http",
        is_flag=True,
        help="Allow sending the API key over plain http to a host other than loopback.",
    ),
]


def connection_options(function: F) -> F:
    """Stack the options that say how to reach the API and read a job."""
    for option in reversed(_CONNECTION_OPTIONS):
        function = option(function)
    return function


def connection_from(options: dict[str, Any]) -> Connection:
    """Pop the connection options out of a command's keyword arguments."""
    return Connection(
        base_url=options.pop("base_url"),
        api_key=options.pop("api_key"),
        page_size=options.pop("page_size"),
        concurrency=options.pop("concurrency"),
        max_retries=options.pop("max_retries"),
        wait=options.pop("wait"),
        timeout=options.pop("timeout"),
        request_timeout=options.pop("request_timeout"),
        allow_insecure_http=options.pop("allow_insecure_http"),
    )


quiet_option = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bars and no printed summary."
)
