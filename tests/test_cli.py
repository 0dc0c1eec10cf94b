"""The CLI: exit codes and exact messages for every documented failure, over real HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from batch_export.cli import main
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY, SMALL_JOB
from tests.scripted import Answer, item, paged, scripted_server


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert CANARY_KEY not in result.output
    assert CANARY_KEY not in (result.stderr or "")
    return result


def run_against(answers: list[Answer], *args: str) -> Result:
    """``batch-export ARGS`` against a server that gives ``answers``, with the canary key."""
    with scripted_server(answers) as server:
        return run(*args, "--base-url", server.base_url, "--api-key", CANARY_KEY)


def test_export_prints_the_summary(api_env: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    result = run("export", SMALL_JOB, "-o", str(out))
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert re.fullmatch(
        rf"Job {SMALL_JOB} completed: \d+ rows to {re.escape(str(out))} "
        r"\(parquet\)",
        first,
    )
    assert out.exists()


def test_quiet_prints_nothing(api_env: Emulator, tmp_path: Path) -> None:
    result = run("export", SMALL_JOB, "-o", str(tmp_path / "o.csv"), "--quiet")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["../x"],
            2,
            "Error: Job id '../x' is not a plain identifier: use the `job_id` that "
            "POST /v1/batch returned (letters, digits, '-' and '_', e.g. "
            "9d7b2c8e-8a4b-4c10-9af3-65f4f8f6c019).",
        ),
        (["a b"], 2, "Error: Job id 'a b' is not a plain identifier"),
        ([SMALL_JOB, "--format", "xlsx"], 2, "Error: Invalid value for '--format'"),
        (
            [SMALL_JOB, "--page-size", "51"],
            2,
            "Error: Invalid value for '--page-size': 51 is not in the range 1<=x<=50.",
        ),
        (
            [SMALL_JOB, "--escape-formulas"],
            2,
            "Error: --escape-formulas applies to CSV output only, not parquet: "
            "drop it or write a .csv file.",
        ),
        (
            ["no-such-job"],
            4,
            "Error: The API has no such job (HTTP 404: Batch job not found; correlation id ",
        ),
        (
            [SMALL_JOB, "--api-key", "wrong"],
            3,
            "Error: The API rejected the API key (HTTP 401: "
            "API key missing or invalid; correlation id ",
        ),
    ],
)
def test_failures_exit_with_their_code_and_one_sentence(
    api_env: Emulator, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    out = tmp_path / "out.parquet"
    result = run("export", *args[:1], "-o", str(out), *args[1:])
    assert result.exit_code == code
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_output_not_writable(api_env: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "missing-folder" / "out.parquet"
    result = run("export", SMALL_JOB, "-o", str(out))
    assert result.exit_code == 8
    assert result.stderr.startswith("Error: Output folder"), result.stderr


def test_unknown_extension_asks_for_format(api_env: Emulator, tmp_path: Path) -> None:
    result = run("export", SMALL_JOB, "-o", str(tmp_path / "out.txt"))
    assert result.exit_code == 2
    assert "--format" in result.stderr


def test_missing_key(sample_api: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEONODE_SCRAPER_API_KEY", raising=False)
    result = run(
        "export", SMALL_JOB, "-o", str(tmp_path / "o.csv"), "--base-url", sample_api.base_url
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: No API key: pass --api-key or set GEONODE_SCRAPER_API_KEY in the environment.\n"
    )


def test_insecure_http_is_refused(tmp_path: Path) -> None:
    result = run(
        "export",
        SMALL_JOB,
        "-o",
        str(tmp_path / "o.csv"),
        "--base-url",
        "http://api.example.com",
        "--api-key",
        CANARY_KEY,
    )
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: Refusing to send the API key in clear text to api.example.com over http: use "
        "an https:// base URL, or pass --allow-insecure-http if you accept the risk.\n"
    )


def test_not_finished_with_no_wait(tmp_path: Path) -> None:
    doc = generate_job(job_id="slow", items=10, processing_polls=5)
    with Emulator(jobs=[doc], api_key=CANARY_KEY) as emulator:
        result = run(
            "export",
            "slow",
            "-o",
            str(tmp_path / "o.csv"),
            "--no-wait",
            "--base-url",
            emulator.base_url,
            "--api-key",
            CANARY_KEY,
        )
    assert result.exit_code == 5
    assert result.stderr == (
        "Error: Job slow is still queued (0 of 10 done): rerun later, or without --no-wait to "
        "wait for it.\n"
    )


def test_not_provably_whole(tmp_path: Path) -> None:
    items = [item(i) for i in range(60)]
    items[55] = item(2)
    result = run_against(paged("j1", items), "export", "j1", "-o", str(tmp_path / "o.csv"))
    assert result.exit_code == 6
    assert result.stderr == (
        "Error: The results of job j1 are not provably whole (input_index 2 came more than "
        "once; expected 60 items by the job's counters, read 59; repeated input_index 2; "
        "missing input_index 55), even after re-reading: nothing was written. Rerun the "
        "export later; if it persists, report the job id to the API provider.\n"
    )
    assert not (tmp_path / "o.csv").exists()
    assert list(tmp_path.iterdir()) == []


def test_api_failure(tmp_path: Path) -> None:
    answers = [Answer(status=503, body="<h1>Service Unavailable</h1>")]
    result = run_against(
        answers, "export", "j1", "-o", str(tmp_path / "o.csv"), "--max-retries", "0"
    )
    assert result.exit_code == 7
    assert result.stderr == (
        "Error: The API answered HTTP 503: Service Unavailable. Tried once; the API or the "
        "network is not answering well: try again later, or raise --max-retries.\n"
    )


def test_fail_on_item_errors(api_env: Emulator, tmp_path: Path) -> None:
    out = tmp_path / "o.jsonl"
    result = run(
        "export",
        SMALL_JOB,
        "-o",
        str(out),
        "--fail-on-item-errors",
        "-q",
        "--summary",
        str(tmp_path / "s.json"),
    )
    failed = json.loads((tmp_path / "s.json").read_text())["by_status"]["failed"]
    assert result.exit_code == 9
    assert result.stderr.startswith(f"Error: {failed} of ")
    assert out.exists()


def test_every_command_has_help_with_an_example() -> None:
    assert isinstance(main, click.Group)
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    names = main.list_commands(click.Context(main))
    assert names == ["scrape", "export", "report", "sync", "compact", "emulator"]
    for name in names:
        result = run(name, "--help")
        assert result.exit_code == 0
        assert "Example:" in result.output, name
        assert f"batch-export {name}" in readme, f"README does not show `batch-export {name}`"


def test_escape_formulas_neutralises_scraped_formulas(tmp_path: Path) -> None:
    evil = item(0)
    evil["data"]["markdown"] = '=HYPERLINK("https://evil.test","click")'
    evil["url"] = "@SUM(1+1)"
    answers = paged("j1", [evil, item(1)])
    plain = run_against(answers, "export", "j1", "-o", str(tmp_path / "plain.csv"), "-q")
    safe = run_against(
        answers, "export", "j1", "-o", str(tmp_path / "safe.csv"), "--escape-formulas", "-q"
    )
    assert (plain.exit_code, safe.exit_code) == (0, 0)
    plain_text = (tmp_path / "plain.csv").read_text()
    safe_text = (tmp_path / "safe.csv").read_text()
    assert '"=HYPERLINK(""https://evil.test"",""click"")"' in plain_text
    assert '"\'=HYPERLINK(""https://evil.test"",""click"")"' in safe_text
    assert '"\'@SUM(1+1)"' in safe_text
    assert '"# Page 1"' in safe_text  # ordinary cells are left alone
