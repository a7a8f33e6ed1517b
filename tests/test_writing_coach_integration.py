"""writing-coach with the other parts it is used with: a local folder of stories (corpus source),
the run report's statistics and `tune review`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import read_jsonl
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.reddit.sample_threads import LAMP, LOG
from synthtune.plugins.reddit.testing import FakeReddit
from test_writing_coach import coach_responder

OUT = Path("runs") / "writing-coach"


# Every test here runs the writing coach, whose prompt counts story tokens.
pytestmark = pytest.mark.usefixtures("encodings")


@pytest.fixture
def fake_reddit(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeReddit]:
    with FakeReddit() as server:
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        yield server


@pytest.fixture
def coach_run(cli, fake_openai: FakeOpenAI, fake_reddit: FakeReddit, workdir: Path) -> dict:
    fake_openai.responder = coach_responder
    result = cli(
        "run",
        "--preset",
        "writing-coach",
        "--yes",
        "--set",
        f"source.base_url={fake_reddit.base_url}",
        "--set",
        f"source.auth_url={fake_reddit.base_url}",
    )
    assert result.exit_code == 0, result.output
    return json.loads((workdir / OUT / "report.json").read_text())


def test_report_counts_add_up_to_the_records_read(coach_run: dict) -> None:
    report = coach_run
    assert report["records"] == report["requests"] == 9  # one request per story
    assert report["kept"] + report["dropped_total"] + report["failed"] == report["records"]
    assert sum(report["dropped"].values()) == report["dropped_total"] == 6
    assert report["examples"]["train"] == report["kept"] == 3
    funnel = {step["stage"]: step["count"] for step in report["stats"]["funnel"]}
    assert funnel["records"] == 9 and funnel["answered"] == 9
    per_category = report["stats"]["categories"]
    assert sum(c["records"] for c in per_category.values()) == report["records"]


def test_review_rejects_and_restores_a_writing_coach_sample(cli, coach_run: dict, workdir: Path) -> None:
    train = workdir / OUT / "train.jsonl"
    before = train.read_bytes()
    assert len(read_jsonl(train)) == 3
    result = cli("review", "latest", input="l\nx\nq\n")
    assert result.exit_code == 0, result.output
    seq = int(result.output.split(" rejected in review")[0].rsplit("sample ", 1)[1])
    assert len(read_jsonl(train)) == 2
    rejected = [r for r in read_jsonl(workdir / OUT / "rejected.jsonl") if r["filter"] == "review"]
    assert [r["seq"] for r in rejected] == [seq]
    report = json.loads((workdir / OUT / "report.json").read_text())
    assert report["kept"] + report["dropped_total"] + report["failed"] == report["records"]

    result = cli("review", "latest", input=f"g {seq}\nu\nq\n")
    assert result.exit_code == 0, result.output
    assert train.read_bytes() == before


def test_local_folder_of_stories(cli, fake_openai: FakeOpenAI, workdir: Path, line_validators) -> None:
    fake_openai.responder = coach_responder
    stories = workdir / "stories"
    stories.mkdir()
    (stories / "lamp.txt").write_text(LAMP)
    (stories / "log.txt").write_text(LOG)
    (stories / "note.txt").write_text("Too short to be a story.")
    result = cli("run", "--preset", "writing-coach-local", "--yes")
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "runs/writing-coach-local/report.json").read_text())
    assert report["records"] == 2  # the short file is not a story
    prompts = [body["messages"][-1]["content"] for body in fake_openai.chat_requests]
    assert any(LAMP[:80] in p for p in prompts) and any(LOG[:80] in p for p in prompts)
    for line in read_jsonl(workdir / "runs/writing-coach-local/train.jsonl"):
        assert not list(line_validators["chat"].iter_errors(line))
