"""`batch-export sync` as a scheduler runs it: exit codes, exact messages, JSON events and
the run summary; one failing job does not stop the others."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result

from batch_export.cli import main
from batch_export.export import Connection
from batch_export.sync import sync
from batch_export.testing import Emulator, Faults, generate_job
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, scripted_server
from tests.sync.conftest import expected_rows, small_docs
from tests.sync.readers import connect, reader_view

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

SMALL = expected_rows(small_docs())
EVENTS = {
    "run_started",
    "job_planned",
    "job_started",
    "job_exported",
    "job_skipped",
    "job_failed",
    "run_finished",
}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["sync", *args])


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_json_logs_are_one_event_a_line_and_the_summary_is_on_stdout(
    small_env: Emulator, tmp_path: Path
) -> None:
    result = run("--dest", str(tmp_path), "--log-format", "json", "--jobs", "3")
    assert result.exit_code == 0, result.output
    events = json_lines(result.stderr)
    assert {event["event"] for event in events} <= EVENTS
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+\+00:00", event["ts"]) for event in events)
    assert events[0] | {"ts": None} == {
        "ts": None,
        "event": "run_started",
        "dest": str(tmp_path),
        "listed": len(small_docs()),
        "outside_window": 0,
        "to_export": len(SMALL),
        "skipped": 2,
        "dry_run": False,
        "listing_requests": 1,
        "listed_since": None,
    }
    exported = {e["job_id"]: e["rows"] for e in events if e["event"] == "job_exported"}
    assert exported == SMALL
    skipped = [(e["event"], e["reason"]) for e in events if e["event"] == "job_skipped"]
    assert skipped == [("job_skipped", "not_finished")] * 2
    assert events[-1]["event"] == "run_finished" and events[-1]["exit_code"] == 0
    summary = json.loads(result.stdout)
    assert result.stdout.count("\n") == 1
    assert summary["exit_code"] == 0 and summary["rows"] == sum(SMALL.values())
    assert sorted(job["job_id"] for job in summary["exported"]) == sorted(SMALL)


def test_text_logs_and_a_summary_for_people(small_env: Emulator, tmp_path: Path) -> None:
    result = run("--dest", str(tmp_path), "--limit", "2")
    assert result.exit_code == 0
    assert re.fullmatch(
        rf"Exported 2 jobs \(\d+ rows\) to {re.escape(str(tmp_path))} in \d+\.\d s "
        rf"\(2 not finished, {len(SMALL) - 2} over limit\)\.\n"
        rf"Listed {len(small_docs())} jobs in 1 request\.\n",
        result.stdout,
    )
    lines = result.stderr.splitlines()
    assert (
        lines[0] == f"batch-export sync: {len(small_docs())} jobs listed, 2 to export to {tmp_path}"
    )
    assert sum(line.startswith("batch-export sync: exported ") for line in lines) == 2
    assert sum(line.endswith(": not finished") for line in lines) == 2
    again = run(
        "--dest", str(tmp_path), "--limit", "2", "--summary", str(tmp_path / "s.json"), "--full"
    )
    assert again.exit_code == 0 and again.stdout.startswith("Exported 2 jobs (")
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["skipped"] == {"unchanged": 2, "not_finished": 2, "over_limit": len(SMALL) - 4}
    assert summary["exit_code"] == 0 and len(summary["exported"]) == 2


def test_nothing_new_says_so(small_env: Emulator, tmp_path: Path) -> None:
    assert run("--dest", str(tmp_path)).exit_code == 0
    result = run("--dest", str(tmp_path))
    assert result.exit_code == 0
    newest = max(datetime.fromisoformat(doc["created_at"]) for doc in small_docs())
    since = (newest - timedelta(hours=1)).isoformat()
    # From the watermark: the newest job (still running) is listed, the other read by its id.
    assert result.stdout == (
        f"Nothing to export: {tmp_path} is up to date (2 not finished).\n"
        f"Listed 1 job in 1 request, created from {since} (from the watermark); 1 waiting job "
        "read by id.\n"
    )
    full = run("--dest", str(tmp_path), "--full")
    assert full.exit_code == 0 and full.stdout == (
        f"Nothing to export: {tmp_path} is up to date ({len(SMALL)} unchanged, 2 not finished).\n"
        f"Listed {len(small_docs())} jobs in 1 request.\n"
    )


def test_dry_run_writes_nothing(small_env: Emulator, tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    result = run("--dest", str(dest), "--dry-run", "--since", "2026-05-25")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert all(re.fullmatch(r"would export [0-9a-f-]{36} \(new\)", line) for line in lines[:-2])
    assert lines[-2].startswith(f"Dry run: would export {len(lines) - 2} jobs to {dest}")
    assert lines[-1].startswith("Listed ") and "created from 2026-05-25T00:00:00+00:00" in lines[-1]
    assert 0 < len(lines) - 2 < len(SMALL)
    assert not dest.exists()


def with_bad_job(extra_id: str = "bad-job") -> list[dict[str, Any]]:
    """The small account and one more finished job whose second item cannot be read."""
    bad = generate_job(
        job_id=extra_id, items=3, markdown_bytes=80, created_at="2026-05-24T00:00:00Z"
    )
    bad["results"][1]["metadata"]["http_status"] = "teapot"
    return [*small_docs(), bad]


def test_a_failing_job_exits_10_and_the_others_land(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Emulator(jobs=with_bad_job(), api_key=CANARY_KEY) as emulator:
        monkeypatch.setenv("GEONODE_SCRAPER_API_KEY", CANARY_KEY)
        args = ["--dest", str(tmp_path), "--base-url", emulator.base_url, "--log-format", "json"]
        result = run(*args, "--summary", str(tmp_path / "summary.json"))
        assert result.exit_code == 10
        assert result.stderr.splitlines()[-1] == (
            f"Error: 1 of {len(SMALL) + 1} jobs could not be exported to {tmp_path} (bad-job); "
            "the others were. Rerun the same command to retry them: jobs already exported "
            "are not exported again."
        )
        events = json_lines("\n".join(result.stderr.splitlines()[:-1]))
        failed = [e for e in events if e["event"] == "job_failed"]
        reason = (
            "Expected `metadata.http_status` to be an integer that fits int32 in item "
            "input_index 1 (url "
        )
        assert len(failed) == 1 and failed[0]["job_id"] == "bad-job"
        assert failed[0]["reason"].startswith(reason) and failed[0]["exit_code"] == 7
        assert failed[0]["error"] == "ResponseShapeError"
        summary = json.loads((tmp_path / "summary.json").read_text())
        assert summary["exit_code"] == 10 and [f["job_id"] for f in summary["failed"]] == [
            "bad-job"
        ]
        assert json.loads(result.stdout) == summary
        assert reader_view(str(tmp_path), SMALL, connect()).committed == SMALL
        # Rerun: only the failing job is tried again.
        again = run(*args)
        assert again.exit_code == 10
        events = json_lines("\n".join(again.stderr.splitlines()[:-1]))
        assert [e["job_id"] for e in events if e["event"] == "job_started"] == ["bad-job"]


def failing_pages(upstream: str, job_id: str) -> Any:
    """A gateway in front of the emulator that answers 503 to every page of one job."""

    def answer(_: int, path: str, query: dict[str, str]) -> Answer:
        if path == f"/v1/batch/{job_id}" and query.get("page_size") != "1":
            return Answer(status=503, body={"code": "unavailable", "message": "down for now"})
        reply = requests.get(
            upstream + path, params=query, headers={"X-Api-Key": CANARY_KEY}, timeout=10
        )
        return Answer(status=reply.status_code, body=reply.content)

    return answer


def test_a_job_whose_pages_fail_for_good_fails_alone(
    small_account: Emulator, tmp_path: Path
) -> None:
    victim = sorted(SMALL)[3]
    with scripted_server(failing_pages(small_account.base_url, victim)) as gateway:
        connection = Connection(base_url=gateway.base_url, api_key=CANARY_KEY, max_retries=1)
        report = sync(tmp_path, connection=connection, jobs=2)
    assert report.exit_code == 10
    assert [(f["job_id"], f["error"], f["exit_code"]) for f in report.failed] == [
        (victim, "RetriesExhaustedError", 7)
    ]
    assert "HTTP 503: down for now" in report.failed[0]["reason"]
    others = {job_id: n for job_id, n in SMALL.items() if job_id != victim}
    assert reader_view(str(tmp_path), SMALL, connect()).committed == others
    # The gateway is gone: the next sync exports just that job.
    healed = sync(
        tmp_path, connection=Connection(base_url=small_account.base_url, api_key=CANARY_KEY)
    )
    assert [job["job_id"] for job in healed.exported] == [victim] and healed.exit_code == 0


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--since", "yesterday"],
            2,
            "Error: --since 'yesterday' is not an ISO date or datetime: use e.g. 2026-05-26 "
            "or 2026-05-26T10:30:00Z (UTC unless an offset is given).",
        ),
        (
            ["--storage-option", "anon"],
            2,
            "Error: Invalid value for --storage-option: expected KEY=VALUE, got 'anon'.",
        ),
        (
            ["--endpoint-url", "http://127.0.0.1:9"],
            2,
            "Error: --endpoint-url applies to s3:// destinations only.",
        ),
        (["--jobs", "0"], 2, "Error: Invalid value for '--jobs': 0 is not in the range 1<=x<=32."),
    ],
)
def test_usage_errors_name_the_flag(
    small_env: Emulator, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = run("--dest", str(tmp_path), *args)
    assert result.exit_code == code
    assert result.stderr.splitlines()[-1] == message
    assert not list(tmp_path.iterdir())


def test_could_not_run_exit_codes(small_account: Emulator, tmp_path: Path) -> None:
    base = ["--dest", str(tmp_path / "d"), "--base-url", small_account.base_url]
    rejected = run(*base, "--api-key", "wrong-key")
    assert rejected.exit_code == 3
    assert rejected.stderr.startswith("Error: The API rejected the API key (HTTP 401")

    small_account.set_faults(Faults(server_error_rate=1.0))
    down = run(*base, "--api-key", CANARY_KEY, "--max-retries", "0")
    assert down.exit_code == 7 and "Tried once" in down.stderr
    small_account.set_faults(Faults())

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    unwritable = run(
        "--dest", str(blocker), "--base-url", small_account.base_url, "--api-key", CANARY_KEY
    )
    assert unwritable.exit_code == 8
    assert unwritable.stderr == (
        f"Error: --dest {blocker} is a file: give a folder (it is created if it does not exist).\n"
    )
    assert CANARY_KEY not in rejected.output + down.output + unwritable.output


def test_sync_is_in_the_help_the_readme_and_its_page() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert re.search(r"^  sync\s+Export every finished job", result.stdout, re.M)
    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text().split("## Warehouse loads (sync)", 1)[1]
    section = section.split("\n## ", 1)[0]
    assert "batch-export sync --dest" in section and "(docs/sync.md)" in section
    page = (root / "docs" / "sync.md").read_text()
    for needle in ("batch-export sync --dest", "--log-format json", "exit", "duckdb", "cron"):
        assert needle in page.lower() or needle in page
