"""The `scrape` command: a list of URLs to one table, each batch submitted exactly once."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

from batch_export.api import MAX_BATCH_URLS, OUTPUT_FORMATS, PROXY_TYPES
from batch_export.cli.options import (
    connection_from,
    connection_options,
    escape_formulas_option,
    output_options,
    quiet_option,
)

if TYPE_CHECKING:
    from batch_export.scraping import BatchOptions

__all__ = ["scrape_command"]

EXIT_INTERRUPTED = 130


def _headers(values: tuple[str, ...]) -> dict[str, str] | None:
    headers = {}
    for value in values:
        name, colon, text = value.partition(":")
        if not colon or not name.strip():
            raise click.BadParameter(f"{value!r} is not 'Name: value'.", param_hint="--header")
        headers[name.strip()] = text.strip()
    return headers or None


def _batch_options(options: dict[str, Any]) -> BatchOptions:
    """Pop the batch options out of the command's keyword arguments."""
    from batch_export.scraping import BatchOptions

    return BatchOptions(
        formats=tuple(options.pop("formats")) or ("markdown",),
        render_js=options.pop("render_js"),
        proxy_country=options.pop("proxy_country"),
        proxy_type=options.pop("proxy_type"),
        headers=_headers(options.pop("headers")),
        batch_size=options.pop("batch_size"),
    )


def _interrupted(*, cancelled: bool) -> NoReturn:
    click.echo(
        "Error: Interrupted: "
        + ("the jobs not yet exported were cancelled; " if cancelled else "")
        + "the state file is kept: rerun the same command to continue without paying twice.",
        err=True,
    )
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)  # worker threads mid-request are not waited for


@click.command("scrape")
@click.argument("urls", type=click.Path(dir_okay=False, allow_dash=True))
@output_options("File to write: one row per line of URLS.")
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False),
    help="The state file that makes a rerun continue without paying twice "
    "[default: beside the output, OUTPUT.scrape.json].",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, MAX_BATCH_URLS),
    default=MAX_BATCH_URLS,
    show_default=True,
    help="URLs per batch (the API takes 1 to 1,000; fewer on some plans).",
)
@click.option(
    "--content",
    "formats",
    type=click.Choice(OUTPUT_FORMATS),
    multiple=True,
    help="What the API extracts from each page; repeat for both [default: markdown].",
)
@click.option("--render-js", is_flag=True, help="Render each page in a browser first.")
@click.option("--proxy-country", help="Proxy country, two capital letters (US, DE).")
@click.option(
    "--proxy-type",
    type=click.Choice(PROXY_TYPES),
    help="Proxy type [default: the API's, residential].",
)
@click.option(
    "--header", "headers", multiple=True, help="'Name: value' sent to every page; repeatable."
)
@click.option(
    "--resubmit",
    type=click.IntRange(0, 10),
    default=1,
    show_default=True,
    help="Rounds that resubmit the lines whose failure may pass (TIMEOUT, NETWORK_ERROR, ...).",
)
@click.option(
    "--dry-run", is_flag=True, help="Say how many URLs, batches and requests; submit nothing."
)
@click.option(
    "--cancel-on-interrupt",
    is_flag=True,
    help="On Ctrl-C, cancel the jobs submitted and not yet exported (by default they keep "
    "running, paid for, and a rerun exports them).",
)
@escape_formulas_option
@connection_options
@quiet_option
def scrape_command(
    urls: str,
    output: str,
    fmt: str | None,
    quiet: bool,
    dry_run: bool,
    **options: Any,
) -> None:
    """Scrape every URL of URLS (one a line, - for stdin) into one table, one row per line.

    Splits the URLs into batches, submits each exactly once (a state file beside the output
    records each batch before and after its POST, so a rerun never pays twice), waits for the
    jobs, exports them, resubmits failures that may pass, and writes the table atomically:
    the export's columns plus `line` and `attempts`; lines that are no URL are marked invalid.

    \b
    Exit codes: those of `export`, and 11 when the account's balance is spent (402): top it
    up and rerun the same command, which goes on where it stopped.

    \b
    Example:
        export GEONODE_SCRAPER_API_KEY=...
        batch-export scrape urls.txt -o pages.parquet --dry-run
        batch-export scrape urls.txt -o pages.parquet
        batch-export scrape urls.txt -o pages.csv --content markdown --content html
    """
    from batch_export.scraping import plan, scrape_to_file
    from batch_export.scraping.progress import ScrapeProgress

    connection = connection_from(options)
    batch_options = _batch_options(options)
    if dry_run:
        from batch_export.scraping import default_state_path

        state = options["state_path"] or default_state_path(output)
        click.echo(plan(urls, options=batch_options, state_path=state).to_text(), nl=False)
        return
    try:
        report = scrape_to_file(
            urls,
            output,
            format=fmt,
            options=batch_options,
            connection=connection,
            progress=ScrapeProgress(enabled=False if quiet else None),
            **options,
        )
    except KeyboardInterrupt:
        _interrupted(cancelled=options["cancel_on_interrupt"])
    if not quiet:
        click.echo(report.to_text(), nl=False)
