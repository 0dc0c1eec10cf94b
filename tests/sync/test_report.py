"""The run summary and the event lines, for people and for machines."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from batch_export.errors import SyncIncomplete
from batch_export.sync import EventLog, SyncReport

NAN = float("nan")


@pytest.mark.parametrize(
    ("name", "fields", "line"),
    [
        (
            "run_started",
            {"listed": 200, "to_export": 12, "dest": "s3://b/p"},
            "batch-export sync: 200 jobs listed, 12 to export to s3://b/p",
        ),
        (
            "job_exported",
            {"job_id": "j1", "reason": "new", "rows": 1234, "seconds": 0.25},
            "batch-export sync: exported j1 (new): 1,234 rows in 0.2 s",
        ),
        (
            "job_failed",
            {"job_id": "j1", "reason": "The API refused.", "exit_code": 7},
            "batch-export sync: FAILED j1 (exit 7): The API refused.",
        ),
        (
            "job_skipped",
            {"job_id": "j1", "reason": "not_finished"},
            "batch-export sync: skipped j1: not finished",
        ),
        ("job_skipped", {"job_id": "j1", "reason": "unchanged"}, None),
        ("job_skipped", {"job_id": "j1", "reason": "over_limit"}, None),
        ("job_started", {"job_id": "j1", "reason": "new"}, None),
        ("run_finished", {"exported": 1}, None),
    ],
)
def test_text_events(name: str, fields: dict[str, Any], line: str | None) -> None:
    stream = io.StringIO()
    EventLog(log_format="text", stream=stream)(name, fields)
    assert stream.getvalue() == ("" if line is None else line + "\n")


@pytest.mark.parametrize("name", ["job_started", "job_skipped", "run_finished"])
def test_json_events_carry_every_field(name: str) -> None:
    stream = io.StringIO()
    EventLog(log_format="json", stream=stream)(name, {"job_id": "j1", "reason": "unchanged"})
    event = json.loads(stream.getvalue())
    assert event.pop("ts").endswith("+00:00")
    assert event == {"event": name, "job_id": "j1", "reason": "unchanged"}


def report(**fields: Any) -> SyncReport:
    return SyncReport(dest="out", dry_run=False, seconds=1.25, **fields)


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({}, "Nothing to export: out is up to date.\n"),
        (
            {"skipped": {"unchanged": 3, "not_finished": 1}},
            "Nothing to export: out is up to date (3 unchanged, 1 not finished).\n",
        ),
        (
            {"exported": [{"job_id": "a", "rows": 1500}, {"job_id": "b", "rows": 2}]},
            "Exported 2 jobs (1,502 rows) to out in 1.2 s.\n",
        ),
        (
            {
                "exported": [{"job_id": "a", "rows": 3}],
                "failed": [{"job_id": "b", "reason": "The API refused.", "exit_code": 7}],
            },
            "Exported 1 job (3 rows) to out in 1.2 s; 1 failed.\n  failed b: The API refused.\n",
        ),
    ],
)
def test_summary_text(fields: dict[str, Any], text: str) -> None:
    assert report(**fields).to_text() == text


def test_failures_raise_sync_incomplete_naming_the_jobs() -> None:
    failed = [{"job_id": f"j{n}", "reason": "x", "exit_code": 7} for n in range(7)]
    done = report(failed=failed, exported=[{"job_id": "ok", "rows": 1}])
    assert done.exit_code == 10 and done.to_dict()["exit_code"] == 10
    with pytest.raises(SyncIncomplete) as caught:
        done.raise_for_failures()
    assert caught.value.exit_code == 10
    assert caught.value.failed_jobs == tuple(f"j{n}" for n in range(7))
    assert str(caught.value) == (
        "7 of 8 jobs could not be exported to out (j0, j1, j2, j3, j4 and 2 more); the others "
        "were. Rerun the same command to retry them: jobs already exported are not exported "
        "again."
    )
    report().raise_for_failures()  # nothing failed: no error


FORGED = "refused\nbatch-export sync: exported j9 (new): 1 rows\x1b[2K\u2028done"


def test_text_lines_escape_what_came_over_the_network() -> None:
    stream = io.StringIO()
    log = EventLog(log_format="text", stream=stream)
    log("job_failed", {"job_id": "j1", "reason": FORGED, "exit_code": 7})
    assert stream.getvalue() == (
        "batch-export sync: FAILED j1 (exit 7): refused\\nbatch-export sync: exported j9 (new): "
        "1 rows\\x1b[2K\\u2028done\n"
    )
    text = report(failed=[{"job_id": "j1", "reason": FORGED, "exit_code": 7}]).to_text()
    assert text.count("\n") == 2 and "\x1b" not in text and "\u2028" not in text


def test_json_is_strict_whatever_the_fields_hold() -> None:
    stream = io.StringIO()
    EventLog(log_format="json", stream=stream)("job_exported", {"job_id": "j", "seconds": NAN})
    strict = {"parse_constant": lambda text: pytest.fail(f"{text} in strict JSON")}
    assert json.loads(stream.getvalue(), **strict)["seconds"] is None
    summary = report(exported=[{"job_id": "j", "rows": 1, "seconds": float("inf")}])
    assert json.loads(summary.to_json(indent=2), **strict)["exported"][0]["seconds"] is None
