"""`batch-export scrape` through click: exit codes and exact one-sentence messages."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from batch_export.cli import main
from batch_export.scraping import BatchOptions
from batch_export.testing import Emulator
from batch_export.testing._app import correlation_id
from tests.conftest import CANARY_KEY
from tests.scraping.conftest import posts, write_input

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

Desk = Callable[..., Emulator]
URLS = [f"https://a.example/{n}" for n in range(25)] + ["", "mailto:x@a.example"]


def cli(emulator: Emulator | None, *args: str) -> Result:
    env = {"GEONODE_SCRAPER_API_KEY": CANARY_KEY}
    if emulator is not None:
        env["SCRAPER_API_BASE_URL"] = emulator.base_url
    return CliRunner().invoke(main, ["scrape", *args], env=env, catch_exceptions=False)


def test_scrape_writes_the_table_and_prints_the_report(desk: Desk, tmp_path: Path) -> None:
    urls, out = write_input(tmp_path, URLS), tmp_path / "pages.jsonl"
    emulator = desk(failure_rate=0.0)
    result = cli(emulator, str(urls), "-o", str(out), "--batch-size", "10")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "27 rows, one per input line (25 completed, 2 invalid)."
    assert len(out.read_text().splitlines()) == 27
    assert (tmp_path / "pages.jsonl.scrape.json").exists()
    again = cli(emulator, str(urls), "-o", str(out), "--batch-size", "10")
    assert "this run sent 0 POSTs" in again.output
    assert posts(emulator) == 3


def test_the_dry_run_says_what_it_would_cost(tmp_path: Path) -> None:
    urls = write_input(tmp_path, URLS)
    result = cli(None, str(urls), "-o", str(tmp_path / "o.csv"), "--dry-run", "--batch-size", "10")
    assert result.exit_code == 0
    assert result.output.startswith(
        "27 lines: 25 URLs to send (0 repeated), 2 invalid; 3 batches of up to 10; "
        "at most 25 requests charged"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["urls.txt"]


def test_a_spent_balance_exits_11_and_a_rerun_goes_on(desk: Desk, tmp_path: Path) -> None:
    urls, out = write_input(tmp_path, URLS), tmp_path / "pages.parquet"
    emulator = desk(balance=5, failure_rate=0.0)
    result = cli(emulator, str(urls), "-o", str(out))
    assert result.exit_code == 11
    [refused] = [number for number, r in enumerate(emulator.requests, 1) if r.status == 402]
    assert result.output == (
        "Error: The API refused the request for want of balance (HTTP 402: Insufficient "
        "balance: the batch needs up to 25 requests, 5 are left; correlation id "
        f"{correlation_id(refused)}): top up the account, then rerun.\n"
    )
    assert emulator.desk is not None
    emulator.desk.set_settings(emulator.desk.settings.__class__(failure_rate=0.0))
    assert cli(emulator, str(urls), "-o", str(out)).exit_code == 0
    assert len(emulator.desk.created) == 1


def test_a_changed_input_exits_2_with_one_sentence(desk: Desk, tmp_path: Path) -> None:
    urls, out = write_input(tmp_path, URLS), tmp_path / "pages.parquet"
    emulator = desk()
    assert cli(emulator, str(urls), "-o", str(out)).exit_code == 0
    write_input(tmp_path, URLS[:-1])
    result = cli(emulator, str(urls), "-o", str(out))
    assert result.exit_code == 2
    assert result.output == (
        f"Error: The state file {out}.scrape.json was made for another list of URLs (27 lines "
        "then, 26 now, with other URLs): rerun with the same URLs, or pass --state with a new "
        "path to start afresh.\n"
    )


def test_a_header_that_is_not_name_colon_value_is_a_usage_error(tmp_path: Path) -> None:
    urls = write_input(tmp_path, URLS)
    result = cli(None, str(urls), "-o", str(tmp_path / "o.csv"), "--header", "nocolon")
    assert result.exit_code == 2
    assert "Invalid value for --header: 'nocolon' is not 'Name: value'." in result.output


def test_the_command_and_the_notebook_take_every_batch_option() -> None:
    """BatchOptions is the one declaration: the CLI's options and scrape()'s keywords follow."""
    from batch_export.cli.scrape import scrape_command
    from batch_export.scraping import scrape

    fields = {spec.name for spec in dataclasses.fields(BatchOptions)}
    cli_names = {param.name for param in scrape_command.params}
    assert fields <= cli_names
    assert fields <= set(inspect.signature(scrape).parameters)
    defaults = {spec.name: spec.default for spec in dataclasses.fields(BatchOptions)}
    by_name = {param.name: param for param in scrape_command.params}
    assert by_name["batch_size"].default == defaults["batch_size"]
    assert inspect.signature(scrape).parameters["batch_size"].default == defaults["batch_size"]
    assert tuple(inspect.signature(scrape).parameters["formats"].default) == defaults["formats"]
