"""A server that misbehaves in ways the issue did not list: every export is exact or loud."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from batch_export.cli import main
from tests.conftest import CANARY_KEY
from tests.scripted import Answer, Script, item, job_body, paged, scripted_server

# make unit-fast leaves these out (real servers, processes, kills, a corpus); make test runs them.
pytestmark = pytest.mark.slow

FAST = ["--max-retries", "2", "--api-key", CANARY_KEY]


def export_from(script: Script | list[Answer], tmp_path: Path, *extra: str) -> tuple[int, str]:
    with scripted_server(script) as server:
        result = CliRunner().invoke(
            main,
            [
                "export",
                "j1",
                "-o",
                str(tmp_path / "out.jsonl"),
                "--base-url",
                server.base_url,
                *FAST,
                *extra,
            ],
        )
    assert CANARY_KEY not in result.output
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr


def _captive_portal(number: int, path: str, query: dict[str, str]) -> Answer:
    return Answer(
        body="<html><body>Please log in to the hotel Wi-Fi</body></html>",
        headers={"Content-Type": "text/html"},
    )


def _slow(number: int, path: str, query: dict[str, str]) -> Answer:
    time.sleep(1.0)
    return Answer(body=job_body("j1", [item(0)]))


def _redirect_loop(number: int, path: str, query: dict[str, str]) -> Answer:
    return Answer(status=307, headers={"Location": "/v1/batch/j1"})


def _counters_drift(number: int, path: str, query: dict[str, str]) -> Answer:
    # Page after page claims a growing job: the last page never comes.
    items = [item(i) for i in range(50 * (number + 1))]
    return paged("j1", items)(number, path, query)


@pytest.mark.parametrize(
    ("script", "extra", "code", "message"),
    [
        (
            _captive_portal,
            [],
            7,
            "Error: The API answered HTTP 200 with a body that is not valid "
            "JSON (58 bytes, perhaps cut short). Tried 2 times; an answer like this one is "
            "asked for again once only",
        ),
        (
            [
                Answer(
                    body={
                        "job_id": "j1",
                        "status": "completed",
                        "total_urls": 1,
                        "completed_urls": 1,
                        "failed_urls": 0,
                        "cancelled_urls": 0,
                        "pending_urls": 0,
                    }
                )
            ],
            [],
            7,
            "Error: Expected a `results` list in page 1 of job j1, got nothing.",
        ),
        (
            [Answer(body={**job_body("j1", []), "results": "none"})],
            [],
            7,
            "Error: Expected a `results` list in page 1 of job j1, got str.",
        ),
        (
            # Missing counters are 0, as the SDK reads them: an item more than counted.
            [Answer(body=job_body("j1", [item(0)], completed_urls=None, total_urls=None))],
            [],
            6,
            "Error: The results of job j1 are not provably whole (input_index 0 is not a position "
            "(none); page 1 held 1 items where 0 were expected",
        ),
        (_slow, ["--request-timeout", "0.2"], 7, "Error: The API at 127.0.0.1"),
        (_redirect_loop, [], 7, "Error: The API redirected more than 5 times."),
        (
            [Answer(body=job_body("j1", [item(0)]), headers={"Content-Encoding": "gzip"})],
            [],
            7,
            "Error: The API at 127.0.0.1",
        ),
        (_counters_drift, [], 6, "Error: The results of job j1 are not provably whole"),
        (
            [Answer(body=job_body("j1", [item(0, input_index="0")]))],
            [],
            7,
            "Error: Expected an integer `input_index` in item 0 of page 1 of job j1 "
            "(url 'https://example.com/0'), got '0'.",
        ),
        (
            [Answer(body=job_body("j1", [item(0)], status="exploded"))],
            ["--no-wait"],
            5,
            "Error: Job j1 is still exploded (1 of 1 done): rerun later",
        ),
    ],
    ids=[
        "html-200",
        "no-results",
        "string-results",
        "no-counters",
        "slow",
        "redirect-loop",
        "bad-gzip",
        "growing-job",
        "string-index",
        "unknown-status",
    ],
)
def test_misbehaviour_ends_in_a_clear_failure(
    tmp_path: Path, script: Script | list[Answer], extra: list[str], code: int, message: str
) -> None:
    exit_code, stderr = export_from(script, tmp_path, *extra)
    assert (exit_code, stderr[: len(message)]) == (code, message), stderr
    assert not (tmp_path / "out.jsonl").exists()


def test_unknown_fields_everywhere_are_kept(tmp_path: Path) -> None:
    body = job_body("j1", [item(0, screenshot_url="https://s/0.png")], api_version="2027-01")
    body["results"][0]["metadata"]["cache"] = "hit"
    exit_code, stderr = export_from([Answer(body=body)], tmp_path, "-q")
    assert exit_code == 0, stderr
    line = (tmp_path / "out.jsonl").read_text()
    assert (
        '"extra":"{\\"screenshot_url\\":\\"https://s/0.png\\",\\"metadata\\":{\\"cache\\":\\"hit\\"}}"'
        in line
    )


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_a_job_that_ended_badly_is_still_exported(tmp_path: Path, ending: str) -> None:
    items = [item(0), item(1, status="cancelled", data=None)]
    script = paged("j1", items, status=ending, completed_urls=1, cancelled_urls=1)
    exit_code, stderr = export_from(script, tmp_path, "--summary", str(tmp_path / "s.json"))
    assert exit_code == 0, stderr
    summary = (tmp_path / "s.json").read_text()
    assert f'"job_status": "{ending}"' in summary
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 2
