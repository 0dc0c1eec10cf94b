"""Failures people can act on: one table of codes (batch_export.codes), read by the summary's
text and JSON, its frames, the HTML report and ``--failed-urls-retryable``; unknown codes kept
as they came. End to end against the emulator, whose jobs carry the provider's codes."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch_export.cli import main
from batch_export.cli.options import SIDE_FILES
from batch_export.codes import FAILURE_CODES, describe, may_resubmit, verdict
from batch_export.export import export
from batch_export.summary.counts import Summary
from batch_export.summary.report import render_report
from batch_export.testing import Emulator, generate_job
from tests.conftest import CANARY_KEY, SMALL_JOB

# The small sample job's failed items, by input_index (sample_data/README.md).
SMALL_FAILURES = {
    2: "UNPROCESSABLE_CONTENT",
    8: "PERMANENT_BLOCK",
    17: "RATE_LIMITED",
    21: "NETWORK_ERROR",
    24: "TIMEOUT",
}


def _served(emulator: Emulator, job_id: str) -> list[dict[str, object]]:
    import requests

    answer = requests.get(
        f"{emulator.base_url}/v1/batch/{job_id}",
        params={"page_size": 50},
        headers={"X-Api-Key": emulator.api_key},
        timeout=5,
    )
    results: list[dict[str, object]] = answer.json()["results"]
    return results


# --- the table --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("RATE_LIMITED", (True, "resubmit")),
        ("TIMEOUT", (True, "resubmit")),
        ("PAYMENT_REQUIRED", (True, "resubmit")),
        ("PERMANENT_BLOCK", (False, "final")),
        ("INVALID_URL", (False, "final")),
        ("CAPTCHA_CHALLENGE", (False, "final")),
        ("target_timeout", (None, "unknown")),  # the old invented codes are not the provider's
        ("timeout", (None, "unknown")),  # nor is a code in another case
        (None, (None, "unknown")),
    ],
)
def test_verdicts(code: str | None, expected: tuple[bool | None, str]) -> None:
    assert (may_resubmit(code), verdict(code)) == expected


def test_every_code_has_a_short_meaning() -> None:
    for code, entry in FAILURE_CODES.items():
        assert entry.code == code and code.isupper()
        assert 10 < len(entry.meaning) <= 60 and entry.meaning == entry.meaning.strip()
        assert describe(code) is entry


# --- the summary ------------------------------------------------------------------------


def test_text_shows_each_code_with_its_meaning_and_verdict() -> None:
    summary = Summary(
        job_id="j1",
        rows=6,
        by_status={"failed": 4, "completed": 2},
        failure_codes={"TIMEOUT": 2, "AUTH_REQUIRED": 1, "teapot\x1b[31m": 1},
    )
    lines = summary.to_text().splitlines()
    start = lines.index("  failures  TIMEOUT 2, AUTH_REQUIRED 1, teapot\\x1b[31m 1")
    assert lines[start + 1 : start + 5] == [
        "            TIMEOUT         resubmit  the target did not answer in time",
        "            AUTH_REQUIRED   final     the page needs a login",
        "            teapot\\x1b[31m  unknown   not a code the provider names; kept as it came",
        "  resubmit  may help for 2 items, will not for 1, unknown for 1",
    ]


def test_json_has_the_notes_and_the_verdict_counts() -> None:
    summary = Summary(job_id="j1", failure_codes={"PROXY_ERROR": 3, "odd": 1})
    facts = json.loads(summary.to_json())
    assert facts["failure_codes"] == {"PROXY_ERROR": 3, "odd": 1}
    assert facts["failure_notes"] == {
        "PROXY_ERROR": {"meaning": "the proxy could not reach the target", "resubmit": True},
        "odd": {"meaning": None, "resubmit": None},
    }
    assert facts["resubmit"] == {"may_help": 3, "will_not_help": 0, "unknown": 1}
    assert Summary.from_dict(facts) == summary  # derived keys are not read back


def test_frames_carry_meaning_and_verdict() -> None:
    frame = Summary(job_id="j1", rows=4, failure_codes={"TIMEOUT": 3, "odd": 1}).frames
    records = frame.failure_codes.to_dict("records")
    assert (records[0]["error_code"], records[0]["resubmit"]) == ("TIMEOUT", True)
    assert frame.failure_codes["resubmit"].isna().tolist() == [False, True]
    assert frame.failure_codes["meaning"].isna().tolist() == [False, True]


def test_the_report_says_what_each_code_means() -> None:
    summary = Summary(
        job_id="j1",
        rows=3,
        by_status={"failed": 3},
        failure_codes={"RATE_LIMITED": 2, "<odd>": 1},
    )
    page = render_report(summary)
    assert "the target or the API limited the request rate" in page
    assert "<td>resubmit</td>" in page and "<td>unknown</td>" in page
    assert "Resubmitting may help for 2 items, will not for 0, unknown for 1." in page
    assert "&lt;odd&gt;" in page and "<odd>" not in page


# --- end to end -------------------------------------------------------------------------


def test_export_writes_the_urls_worth_resubmitting(sample_api: Emulator, tmp_path: Path) -> None:
    summary = export(
        SMALL_JOB,
        tmp_path / "o.jsonl",
        base_url=sample_api.base_url,
        api_key=CANARY_KEY,
        failed_urls_path=tmp_path / "failed.txt",
        failed_urls_retryable_path=tmp_path / "again.txt",
        summary_path=tmp_path / "s.json",
    )
    served = _served(sample_api, SMALL_JOB)
    codes = {it["input_index"]: it["error_code"] for it in served if it["status"] == "failed"}
    assert codes == SMALL_FAILURES
    urls = {it["input_index"]: it["url"] for it in served}
    again = [urls[i] for i, code in SMALL_FAILURES.items() if may_resubmit(code)]
    assert len(again) == 3
    assert (tmp_path / "again.txt").read_text().splitlines() == again
    assert len((tmp_path / "failed.txt").read_text().splitlines()) == 5
    assert summary.retryable_failed_urls == again
    facts = json.loads((tmp_path / "s.json").read_text())
    assert facts["resubmit"] == {"may_help": 3, "will_not_help": 2, "unknown": 0}
    assert facts["failure_notes"]["PERMANENT_BLOCK"]["resubmit"] is False


def test_unknown_codes_are_kept_as_they_came_and_not_resubmitted(tmp_path: Path) -> None:
    doc = generate_job(
        job_id="mixed", items=12, failure_rate=0.5, error_codes=("TIMEOUT", "weird_code"), seed=4
    )
    with Emulator(jobs=[doc], api_key=CANARY_KEY) as emulator:
        result = CliRunner().invoke(
            main,
            ["export", "mixed", "-o", str(tmp_path / "o.csv"), "--failed-urls-retryable",
             str(tmp_path / "again.txt"), "--base-url", emulator.base_url],
            env={"GEONODE_SCRAPER_API_KEY": CANARY_KEY},
        )  # fmt: skip
    assert result.exit_code == 0, result.output
    failed = [it for it in doc["results"] if it["status"] == "failed"]
    assert {it["error_code"] for it in failed} == {"TIMEOUT", "weird_code"}
    timeouts = [it["url"] for it in failed if it["error_code"] == "TIMEOUT"]
    assert (tmp_path / "again.txt").read_text().splitlines() == timeouts
    assert "weird_code" in (tmp_path / "o.csv").read_text()  # the rows keep it as it came
    assert "  resubmit  may help for 3 items, will not for 0, unknown for 3" in result.output
    assert "            weird_code  unknown   not a code the provider names" in result.output


def test_the_option_refuses_a_missing_folder(sample_api: Emulator, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["export", SMALL_JOB, "-o", str(tmp_path / "o.csv"), "--failed-urls-retryable",
         str(tmp_path / "no" / "again.txt"), "--base-url", sample_api.base_url],
        env={"GEONODE_SCRAPER_API_KEY": CANARY_KEY},
    )  # fmt: skip
    assert result.exit_code == 8
    assert not (tmp_path / "o.csv").exists()


def test_side_file_options_are_the_export_keywords() -> None:
    """Declared once (cli/options.py); the notebook's keyword is the option's parameter."""
    keywords = {name for name in inspect.signature(export).parameters if name.endswith("_path")}
    assert {name for _, name, _ in SIDE_FILES} == keywords
    command = main.get_command(None, "export")  # type: ignore[arg-type]
    assert command is not None
    flags = {opt for param in command.params for opt in getattr(param, "opts", [])}
    assert {flag for flag, _, _ in SIDE_FILES} <= flags


# --- the tally for a jobs table ---------------------------------------------------------


def test_the_tally_counts_failed_items_codes_only() -> None:
    import pyarrow as pa

    from batch_export.schema import ITEM_SCHEMA
    from batch_export.summary.failures import FailureTally

    def batch(*rows: tuple[str | None, str | None]) -> pa.RecordBatch:
        return pa.RecordBatch.from_pylist(
            [{"input_index": n, "status": s, "error_code": c} for n, (s, c) in enumerate(rows)],
            schema=ITEM_SCHEMA,
        )

    tally = FailureTally()
    assert tally.columns() == {"failure_codes": None, "failed_retryable": 0}
    tally.add(batch(("failed", "PERMANENT_BLOCK"), ("completed", "TIMEOUT"), ("failed", None)))
    tally.add(batch(("failed", "TIMEOUT"), ("failed", "TIMEOUT"), (None, "TIMEOUT")))
    tally.add(batch(("failed", 'odd"\n')))
    columns = tally.columns()
    assert columns["failed_retryable"] == 2
    assert json.loads(columns["failure_codes"]) == {
        "TIMEOUT": {"items": 2, "resubmit": True},
        "PERMANENT_BLOCK": {"items": 1, "resubmit": False},
        'odd"\n': {"items": 1, "resubmit": None},
    }
    assert next(iter(json.loads(columns["failure_codes"]))) == "TIMEOUT"  # most frequent first


def test_the_tally_of_an_exported_job_agrees_with_its_summary(
    sample_api: Emulator, tmp_path: Path
) -> None:
    import batch_export as bx
    from batch_export.summary.failures import FailureTally

    tally = FailureTally()
    for batch in bx.iter_batches(
        SMALL_JOB, base_url=sample_api.base_url, api_key=CANARY_KEY, progress=False
    ):
        tally.add(batch)
    codes = json.loads(tally.columns()["failure_codes"])
    items = {code: note["items"] for code, note in codes.items()}
    assert items == dict.fromkeys(SMALL_FAILURES.values(), 1)
    assert tally.columns()["failed_retryable"] == 3


def test_the_road_tallies_failure_codes_when_nothing_else_is_counted(
    sample_api: Emulator,
) -> None:
    """The sync reads jobs with count=False: their codes are tallied all the same."""
    from batch_export.connection import Connection
    from batch_export.pipeline import open_job

    connection = Connection(base_url=sample_api.base_url, api_key=CANARY_KEY)
    with open_job(SMALL_JOB, connection=connection, count=False) as stream:
        assert stream.failure_columns() == {"failure_codes": None, "failed_retryable": 0}
        rows = sum(batch.num_rows for batch in stream)
    assert rows == 25
    columns = stream.failure_columns()
    assert columns["failed_retryable"] == 3
    assert set(json.loads(columns["failure_codes"])) == set(SMALL_FAILURES.values())
