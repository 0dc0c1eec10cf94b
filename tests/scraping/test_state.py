"""The state file: written whole at each step, read back the same, refusing another run's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch_export.errors import InvalidInputError
from batch_export.scraping.inputs import read_urls
from batch_export.scraping.plan import BatchOptions, plan_batches
from batch_export.scraping.state import ScrapeState, default_state_path

URLS = read_urls([f"https://a.example/{n}" for n in range(7)] + ["", "https://a.example/9"])


def test_batches_round_trip_with_their_lines_as_runs(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    state = ScrapeState.open(path, urls=URLS, options=BatchOptions(batch_size=5))
    [first, second] = state.add_round(plan_batches(URLS.valid(), batch_size=5, round=0, first=1))
    with state.changing():
        first.intent_at, first.posts, first.job_id = "2026-05-26T10:30:00.000001Z", 1, "j-1"
    state.close()
    assert json.loads(path.read_text())["batches"][1]["lines"] == [[6, 7], [9, 9]]
    again = ScrapeState.open(path, urls=URLS, options=BatchOptions(batch_size=5))
    assert again.batches == [first, second]
    assert again.claimed() == {"j-1"}
    assert (again.rounds, again.parts_dir.name) == (1, "s.parts")


def test_a_second_run_on_the_same_state_is_refused(tmp_path: Path) -> None:
    state = ScrapeState.open(tmp_path / "s.json", urls=URLS, options=BatchOptions())
    with pytest.raises(InvalidInputError, match="Another scrape is running with the state file"):
        ScrapeState.open(tmp_path / "s.json", urls=URLS, options=BatchOptions())
    state.close()
    ScrapeState.open(tmp_path / "s.json", urls=URLS, options=BatchOptions()).close()


@pytest.mark.parametrize(
    "content",
    [b"", b"[]", b'{"version": 2}', b'{"version": 1, "input": {}, "options": {}, "batches": [{}]}'],
)
def test_a_file_that_is_no_state_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=rf"The state file {path} cannot be used \("):
        ScrapeState.open(path, urls=URLS, options=BatchOptions())


def test_changed_options_are_named(tmp_path: Path) -> None:
    ScrapeState.open(tmp_path / "s.json", urls=URLS, options=BatchOptions()).close()
    with pytest.raises(InvalidInputError) as caught:
        ScrapeState.open(tmp_path / "s.json", urls=URLS, options=BatchOptions(render_js=True))
    assert "other options (render_js False then, True now): rerun with the same" in str(
        caught.value
    )


def test_the_default_state_sits_beside_the_output() -> None:
    assert default_state_path("out/pages.csv") == Path("out/pages.csv.scrape.json")


def test_header_values_stay_out_of_the_state_file(tmp_path: Path) -> None:
    options = BatchOptions(headers={"Authorization": "Bearer s3cr3t-t0ken"})
    ScrapeState.open(tmp_path / "s.json", urls=URLS, options=options).close()
    assert b"s3cr3t" not in (tmp_path / "s.json").read_bytes()
    other = BatchOptions(headers={"Authorization": "Bearer another"})
    with pytest.raises(InvalidInputError, match="other options \\(headers "):
        ScrapeState.open(tmp_path / "s.json", urls=URLS, options=other)
