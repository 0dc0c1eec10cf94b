"""Job documents: loading and validation, generation, the view at each poll, the samples."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_export.testing import generate_account, generate_job, load_jobs
from batch_export.testing.jobs import JobDoc, job_stages, job_view, validate_job
from batch_export.testing.sample import SMALL_JOB_ID, main, sample_jobs

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"


def base_doc() -> JobDoc:
    return generate_job(job_id="j", items=5, failure_rate=0.2, cancelled=1, markdown_bytes=100)


def write(folder: Path, name: str, content: Any) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


# --- loading and validation -------------------------------------------------------------


def swap_first_two(doc: JobDoc) -> None:
    doc["results"][0], doc["results"][1] = doc["results"][1], doc["results"][0]


BROKEN: list[tuple[Callable[[JobDoc], Any], str]] = [
    (lambda d: d.update(total_urls=6), "total_urls is 6 but there are 5 items"),
    (lambda d: d.update(completed_urls=4), "completed_urls is 4 but 3 items are completed"),
    (lambda d: d.update(failed_urls=0), "failed_urls is 0 but 1 items are failed"),
    (lambda d: d.update(cancelled_urls=2), "cancelled_urls is 2 but 1 items are cancelled"),
    (lambda d: d.update(pending_urls=1), "pending_urls is 1; expected 0"),
    (lambda d: d.update(failed_urls="1"), "failed_urls is '1', not an integer"),
    (
        lambda d: d["token_summary"].update(tokens_charged_total=5),
        "token_summary.tokens_charged_total is 5 but the items' tokens_charged add up to 3",
    ),
    (
        swap_first_two,
        "results[0] has input_index 1; expected 0 "
        "(items must be ordered by input_index, which runs 0..n-1)",
    ),
    (
        lambda d: d["results"][2].update(status="pending"),
        "results[2] has status 'pending'; expected one of completed, failed, cancelled",
    ),
    (
        lambda d: d.update(status="processing"),
        "status is 'processing'; expected a final status: completed, failed, cancelled",
    ),
    (lambda d: d.pop("results"), "results is missing or not a list"),
    (lambda d: d.update(invalid_urls=None), "invalid_urls is not a list"),
    (lambda d: d.update(job_id=""), "job_id is ''"),
    (lambda d: d.update(emulator={"processing_polls": -1}), "emulator.processing_polls is -1"),
    (lambda d: d["results"].__setitem__(1, "x"), "results[1] is not an object"),
]


@pytest.mark.parametrize(("breaks", "problem"), BROKEN)
def test_load_names_the_file_and_the_broken_invariant(
    tmp_path: Path, breaks: Callable[[JobDoc], Any], problem: str
) -> None:
    doc = base_doc()
    breaks(doc)
    path = write(tmp_path, "bad.json", doc)
    with pytest.raises(ValueError) as error:
        load_jobs(tmp_path)
    assert str(error.value) == f"{path}: {problem}"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "cannot be read as JSON: Expecting property name enclosed in double quotes"),
        ("[1]", "(job 0): expected a JSON object, got int"),
        ('"a string"', "expected a JSON object, got str"),
    ],
)
def test_load_rejects_what_is_not_a_job(tmp_path: Path, content: str, problem: str) -> None:
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(ValueError, match="^" + str(path).replace(".", r"\.")) as error:
        load_jobs(path)
    assert problem in str(error.value)


def test_load_files_folders_and_lists(tmp_path: Path) -> None:
    write(tmp_path, "b.json", [generate_job(job_id="b1", items=1), generate_job(job_id="b2")])
    write(tmp_path, "a.json", generate_job(job_id="a", items=2))
    write(tmp_path, "notes.txt", "not a job")
    assert [doc["job_id"] for doc in load_jobs(tmp_path)] == ["a", "b1", "b2"]
    assert [doc["job_id"] for doc in load_jobs(tmp_path / "a.json")] == ["a"]


def test_load_refuses_a_job_id_twice(tmp_path: Path) -> None:
    first = write(tmp_path, "a.json", generate_job(job_id="same", items=1))
    second = write(tmp_path, "b.json", generate_job(job_id="same", items=2))
    with pytest.raises(ValueError) as error:
        load_jobs(tmp_path)
    assert str(error.value) == f"{second}: job_id 'same' is also in {first}"


def test_load_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"no-such: no such file or directory$"):
        load_jobs(tmp_path / "no-such")


# --- generation -------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    items=st.integers(0, 40),
    failure_rate=st.floats(0, 1),
    cancelled_share=st.floats(0, 1),
    formats=st.sampled_from([("markdown",), ("html",), ("markdown", "html")]),
    links=st.integers(0, 6),
    status=st.sampled_from(["completed", "failed", "cancelled"]),
    polls=st.integers(0, 4),
    invalid=st.integers(0, 8),
    seed=st.integers(0, 2**32),
)
def test_generated_jobs_keep_every_invariant(
    items: int,
    failure_rate: float,
    cancelled_share: float,
    formats: tuple[str, ...],
    links: int,
    status: str,
    polls: int,
    invalid: int,
    seed: int,
) -> None:
    cancelled = int((items - round(items * failure_rate)) * cancelled_share)
    doc = generate_job(
        items=items, failure_rate=failure_rate, cancelled=cancelled, formats=formats, seed=seed,
        links_per_item=links, status=status, processing_polls=polls, invalid_urls=invalid,
        markdown_bytes=150,
    )  # fmt: skip
    assert validate_job(copy.deepcopy(doc)) == doc
    assert (doc["status"], doc["total_urls"], doc["failed_urls"]) == (
        status,
        items,
        round(items * failure_rate),
    )
    assert doc["cancelled_urls"] == cancelled
    assert len(set(doc["invalid_urls"])) == invalid
    assert doc.get("emulator") == ({"processing_polls": polls} if polls else None)
    for item in doc["results"]:
        check_item(item, formats, links)
    if status == "cancelled":
        not_failed = [i["status"] for i in doc["results"] if i["status"] != "failed"]
        assert not_failed[len(not_failed) - cancelled :] == ["cancelled"] * cancelled


def check_item(item: JobDoc, formats: tuple[str, ...], links: int) -> None:
    metadata = item["metadata"]
    if item["status"] == "completed":
        data = item["data"]
        assert (data["markdown"] is not None) == ("markdown" in formats)
        assert (data["html"] is not None) == ("html" in formats)
        assert data["links"] is None or len(data["links"]) <= links
        assert (metadata["http_status"], metadata["tokens_charged"]) == (200, 1)
        assert item["error_code"] is None
    elif item["status"] == "failed":
        assert item["data"] in (None, {"markdown": None, "html": None, "links": None})
        assert item["error_code"] and item["error_message"]
        assert metadata["tokens_charged"] == 0
    else:
        assert item["data"] is None
        assert metadata == {
            "http_status": None,
            "duration_ms": None,
            "retry_count": None,
            "tokens_charged": 0,
        }


def test_generation_is_deterministic() -> None:
    assert generate_job(seed=3, items=10) == generate_job(seed=3, items=10)
    assert generate_job(seed=3, items=10) != generate_job(seed=4, items=10)
    named = generate_job(seed=3, items=10, job_id="mine")
    assert named["results"] == generate_job(seed=3, items=10)["results"]
    assert generate_job(seed=3)["job_id"] == "f8742faf-4486-4849-bdc8-5d4cdc67647a"


def test_error_codes_are_used_in_turn() -> None:
    doc = generate_job(items=20, failure_rate=0.3, error_codes=("a", "b", "c"), seed=1)
    codes = [item["error_code"] for item in doc["results"] if item["status"] == "failed"]
    assert sorted(codes) == ["a", "a", "b", "b", "c", "c"]
    assert {item["error_message"] for item in doc["results"] if item["error_code"] == "a"} == {
        "Scraping failed (a)."
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"items": -1}, "items must be 0 or more, got -1"),
        ({"formats": ("pdf",)}, "formats must be some of 'markdown', 'html', got ['pdf']"),
        ({"formats": ()}, "formats must be some of 'markdown', 'html', got []"),
        ({"failure_rate": 1.5}, "failure_rate must be between 0 and 1, got 1.5"),
        ({"status": "processing"}, "status must be one of completed, failed, cancelled, got "),
        ({"items": 4, "cancelled": 5, "failure_rate": 0}, "cancelled=5 is more than the 4 items"),
        ({"processing_polls": -2}, "processing_polls must be 0 or more, got -2"),
        ({"item_shape": "json"}, "item_shape must be one of documented, sdk, got 'json'"),
    ],
)
def test_generate_job_refuses(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        generate_job(**kwargs)


def test_the_sdk_shape_leaves_out_links_and_retry_count_only() -> None:
    kwargs: dict[str, Any] = {"items": 40, "links_per_item": 3, "failure_rate": 0.3, "seed": 5}
    documented = generate_job(**kwargs, cancelled=2)
    sdk = generate_job(**kwargs, cancelled=2, item_shape="sdk")
    assert {k: v for k, v in sdk.items() if k != "results"} == {
        k: v for k, v in documented.items() if k != "results"
    }
    for mine, theirs in zip(sdk["results"], documented["results"], strict=True):
        data = theirs["data"] and {k: v for k, v in theirs["data"].items() if k != "links"}
        metadata = {k: v for k, v in theirs["metadata"].items() if k != "retry_count"}
        assert mine == {**theirs, "data": data, "metadata": metadata}
    assert any(item["data"] and item["data"]["links"] for item in documented["results"])


def test_large_jobs_have_distinct_pages_of_the_asked_size() -> None:
    doc = generate_job(items=2000, markdown_bytes=2000, failure_rate=0, seed=9)
    texts = [item["data"]["markdown"] for item in doc["results"]]
    assert len(set(texts)) == 2000
    assert 1800 < sum(map(len, texts)) / len(texts) < 2200


def test_generate_account() -> None:
    docs = generate_account(jobs=60, processing=3, seed=2)
    assert docs == generate_account(jobs=60, processing=3, seed=2)
    assert len({doc["job_id"] for doc in docs}) == 60
    created = [doc["created_at"] for doc in docs]
    assert created == sorted(created) and len(set(created)) == 60
    assert created[0][:10] != created[-1][:10]
    running = [doc for doc in docs if doc.get("emulator")]
    assert running == docs[-3:]
    assert {doc["status"] for doc in docs} <= {"completed", "failed", "cancelled"}
    for doc in docs:
        validate_job(doc)
    with pytest.raises(ValueError, match="processing must be between 0 and jobs"):
        generate_account(jobs=2, processing=3)


# --- the view at each poll --------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "polls", "expected"),
    [
        (30, 0, [("completed", 30)] * 3),
        (30, 1, [("queued", 0), ("completed", 30), ("completed", 30)]),
        (30, 3, [("queued", 0), ("processing", 10), ("processing", 20), ("completed", 30)]),
        (7, 4, [("queued", 0), ("processing", 1), ("processing", 3), ("processing", 5)]),
        (0, 2, [("queued", 0), ("processing", 0), ("completed", 0)]),
    ],
)
def test_job_view_by_poll(items: int, polls: int, expected: list[tuple[str, int]]) -> None:
    doc = generate_job(items=items, processing_polls=polls, markdown_bytes=50, failure_rate=0.3)
    views = [job_view(doc, poll=poll) for poll in range(1, len(expected) + 1)]
    assert [(view["status"], len(view["results"])) for view in views] == expected
    for view in views:
        shown = view["results"]
        assert shown == doc["results"][: len(shown)]
        assert view["pending_urls"] == items - len(shown)
        assert view["completed_urls"] == sum(1 for i in shown if i["status"] == "completed")
        assert view["token_summary"]["tokens_reserved"] == items - len(shown)
        assert (view["completed_at"] is None) == (view["status"] in ("queued", "processing"))
        assert "emulator" not in view
    assert len(job_stages(doc)) == polls + 1


# --- the samples ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["small-job.json", "large-job.json", "processing-job.json"])
def test_committed_samples_are_what_the_generator_writes(name: str) -> None:
    expected = json.dumps(sample_jobs()[name], indent=2, ensure_ascii=False) + "\n"
    assert (SAMPLE_DATA / name).read_text(encoding="utf-8") == expected


def test_sample_regeneration(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path)]) == 0
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(sample_jobs())
    assert capfd.readouterr().out.count("wrote ") == 3


def test_samples_cover_what_exports_meet() -> None:
    docs = {doc["job_id"]: doc for doc in load_jobs(SAMPLE_DATA)}
    small = docs[SMALL_JOB_ID]
    assert small["batch_config"]["formats"] == ["markdown", "html"]
    assert small["total_urls"] == 25 and small["cancelled_urls"] == 1
    assert len(small["invalid_urls"]) == 1 and 4 <= small["failed_urls"] <= 5
    assert len({i["error_code"] for i in small["results"] if i["status"] == "failed"}) >= 3
    links = [i["data"]["links"] for i in small["results"] if i["status"] == "completed"]
    assert None in links and any(links)
    sizes = sorted(doc["total_urls"] for doc in docs.values())
    assert sizes == [25, 30, 120]
    assert sum(path.stat().st_size for path in SAMPLE_DATA.iterdir()) < 1_000_000
