"""judge: an LLM-as-judge filter whose calls go through the run's engine (cache, spend, estimate)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import read_jsonl
from synthtune.core.presets import load_preset
from synthtune.core.testing import FakeOpenAI, Reply, default_text
from synthtune.plugins.judge.scoring import Judgement, judge_request, parse_judgement
from synthtune.plugins.plot_generator import RUBRIC as PLOT_RUBRIC

OUT = Path("runs") / "plot-generator"
RUN = ["run", "--preset", "plot-generator", "--limit", "12", "--filter", "judge", "--yes"]


def is_judge(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"].startswith("You are a strict, consistent judge")


def scripted(body: dict[str, Any]) -> Reply:
    """Outlines for every request; the judge gives romance 3, is unreadable on horror, 8 otherwise."""
    if not is_judge(body):
        return Reply(text=default_text(body, 1500))
    prompt = body["messages"][1]["content"]  # the judge's prompt (also when structured output asks again)
    if "romance & comedy" in prompt:
        return Reply(text=json.dumps({"score": 3, "reason": "the plot stays generic"}))
    if "horror & thriller" in prompt:
        return Reply(text="I would rather not grade this one.")
    return Reply(text="```json\n" + json.dumps({"score": 8, "reason": "complete and specific"}) + "\n```")


def judge_bodies(server: FakeOpenAI) -> list[dict[str, Any]]:
    return [b for b in server.chat_requests if is_judge(b)]


# -- pure parts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('{"score": 8, "reason": "good"}', Judgement(8, "good")),
        ('```json\n{"score": 3, "reason": "thin"}\n```', Judgement(3, "thin")),
        ('Here you go: {"score": "6", "reason": "ok"}', Judgement(6, "ok")),
        ("7", Judgement(7, "")),
        ("8/10 - clear and complete", Judgement(8, "clear and complete")),
        ("Score: 9. Vivid.", Judgement(9, "Vivid")),
        ('{"rating": 5}', Judgement(5, "")),
    ],
)
def test_judge_replies_are_read_tolerantly(reply: str, expected: Judgement) -> None:
    assert parse_judgement(reply) == expected


@pytest.mark.parametrize(
    "reply",
    ["", "I would rather not.", '{"score": 11, "reason": "x"}', '{"score": "high"}', "42 reasons", None],
)
def test_replies_without_a_score_on_the_scale_are_unparseable(reply: str | None) -> None:
    assert parse_judgement(reply) is None


def test_the_judge_request_is_stable_and_asks_for_structured_json() -> None:
    from synthtune.core import ChatMessage

    messages = [ChatMessage(role="user", content="Write a plot.")]
    one = judge_request(
        messages, "An answer.", "Be good.", model=None, temperature=0, max_tokens=300, structured=True
    )
    two = judge_request(
        messages, "An answer.", "Be good.", model=None, temperature=0, max_tokens=300, structured=True
    )
    assert one.compute_key() == two.compute_key()
    assert one.params.response_format["json_schema"]["schema"]["required"] == ["score", "reason"]
    prompt = one.messages[-1].content
    assert "Be good." in prompt and "USER: Write a plot." in prompt and "An answer." in prompt
    plain = judge_request(
        messages, "An answer.", "Be good.", model=None, temperature=0, max_tokens=300, structured=False
    )
    assert plain.params.response_format is None


def test_the_task_rubric_is_the_judge_default_and_a_preset_can_replace_it(host) -> None:
    preset = load_preset("plot-generator", host, filters=["judge"])
    assert preset.filters[-1].settings.rubric == PLOT_RUBRIC
    assert preset.as_dict()["filter"][-1]["rubric"] == PLOT_RUBRIC  # recorded with the run's preset
    mine = load_preset("plot-generator", host, ["filter.judge.rubric=Short is good."], ["judge"])
    assert mine.filters[-1].settings.rubric == "Short is good."
    for name in ("writing-coach", "question-generator", "compassionate-chatbot", "agent-chat", "qa-pairs"):
        rubric = load_preset(name, host, filters=["judge"]).filters[-1].settings.rubric
        assert rubric and len(rubric) > 100, name


# -- runs ---------------------------------------------------------------------------------------------


def test_judge_drops_below_min_score_and_unreadable_replies_and_a_rerun_sends_nothing(
    cli, workdir: Path, monkeypatch
) -> None:
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli(*RUN)
        assert result.exit_code == 0, result.output
        judged = judge_bodies(server)
        # one judge call per outline; the unreadable replies were asked once more by structured output
        assert len({json.dumps(b["messages"][:2]) for b in judged}) == 12
        assert len(judged) == 12 + 2
        assert all(b["response_format"]["type"] == "json_schema" for b in judged)
        assert all(PLOT_RUBRIC in b["messages"][1]["content"] for b in judged)
        sent = server.chat_count
        assert sent == 12 + len(judged)

        report = json.loads((workdir / OUT / "report.json").read_text())
        assert report["dropped"] == {"judge: below min_score": 2, "judge: judge-unparseable": 2}
        assert report["kept"] == 8
        assert report["steps"]["judge"]["requests"] == 12
        rejected = {r["record_id"]: r for r in read_jsonl(workdir / OUT / "rejected.jsonl")}
        romance = [r for k, r in rejected.items() if k.startswith("romance")]
        assert len(romance) == 2
        assert all(
            r["score"] == 3 and r["reason"] == "below min_score (3 < 7): the plot stays generic"
            for r in romance
        )
        horror = [r for k, r in rejected.items() if k.startswith("horror")]
        assert all(r["reason"].startswith("judge-unparseable") and "score" not in r for r in horror)

        rerun = cli(*RUN)
        assert rerun.exit_code == 0, rerun.output
        assert server.chat_count == sent  # every outline and judgement came from the store
        assert server.answered_twice() == []
    again = json.loads((workdir / OUT / "report.json").read_text())
    assert again["dropped"] == report["dropped"] and again["kept"] == 8


def test_review_and_the_html_report_show_the_judge_score(cli, workdir: Path, monkeypatch) -> None:
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        assert cli(*RUN).exit_code == 0
    result = cli("review", "latest", input="f\nq\n")  # ordered by reason: the drops first
    assert result.exit_code == 0, result.output
    assert "dropped by judge: below min_score (3 < 7): the plot stays generic  (score 3)" in result.output
    kept = cli("review", "latest", input="o\n" + "n\n" * 5 + "q\n")  # source order: some are kept
    assert "kept  (score 8: complete and specific)" in kept.output, kept.output

    made = cli("report", str(workdir / OUT), "--html", "report.html")
    assert made.exit_code == 0, made.output
    page = (workdir / "report.html").read_text()
    assert 'data-filter="judge"' in page  # the judge's score histogram
    assert "below min_score (3 &lt; 7): the plot stays generic (score 3)" in page  # the samples table


def test_the_judge_model_is_set_apart_from_the_generate_model(cli, workdir: Path, monkeypatch) -> None:
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli(*RUN, "--set", "filter.judge.model=gpt-4.1", "--set", "filter.judge.min_score=2")
        assert result.exit_code == 0, result.output
        assert {b["model"] for b in judge_bodies(server)} == {"gpt-4.1"}
        assert {b["model"] for b in server.chat_requests if not is_judge(b)} == {"gpt-4.1-mini"}
    report = json.loads((workdir / OUT / "report.json").read_text())
    assert report["dropped"] == {"judge: judge-unparseable": 2}


@pytest.mark.usefixtures("encodings")
def test_max_cost_stops_judge_calls_too(cli, workdir: Path, monkeypatch) -> None:
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        # a pricey judge: 12 outlines (about $0.0017 each at list price) fit, 12 judgements do not
        result = cli(*RUN, "--set", "filter.judge.model=gpt-4.1", "--max-cost", "0.04")
        report = json.loads((workdir / OUT / "report.json").read_text())
        assert report["status"] == "capped", result.output
        assert result.exit_code == 3, result.output
        assert report["steps"]["judge"]["not_sent_cost_cap"] > 0
        assert len(judge_bodies(server)) < 12


@pytest.mark.usefixtures("encodings")
def test_estimate_counts_the_judge_calls(cli, workdir: Path, monkeypatch) -> None:
    result = cli("estimate", "--preset", "plot-generator", "--limit", "12", "--filter", "judge", "--json")
    assert result.exit_code == 0, result.output
    estimate = json.loads(result.output)
    assert estimate["records"] == 12
    assert estimate["steps"]["prompt"]["total"]["requests"] == 12
    assert estimate["steps"]["judge"]["total"]["requests"] == 12
    assert estimate["total"]["requests"] == 24  # more requests than records
    # After a run, both steps are answered from the store: nothing left to send.
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        assert cli(*RUN).exit_code == 0
        again = json.loads(
            cli(
                "estimate", "--preset", "plot-generator", "--limit", "12", "--filter", "judge", "--json"
            ).output
        )
    assert again["to_send"]["requests"] == 0 and again["answered"]["requests"] == 24


def test_reask_asks_again_with_the_judges_reason_and_the_report_counts_recoveries(
    cli, workdir: Path, monkeypatch
) -> None:
    def with_reask(body: dict[str, Any]) -> Reply:
        last = body["messages"][-1]["content"]
        if not is_judge(body) and "That answer was rejected" in last and "the plot stays generic" in last:
            # the judge's reason reached the follow-up: this answer does better
            return Reply(text="REASKED " + default_text(body, 1500))
        if is_judge(body) and "THE ANSWER:\nREASKED " in body["messages"][1]["content"]:
            return Reply(text=json.dumps({"score": 9, "reason": "better"}))
        return scripted(body)

    with FakeOpenAI(with_reask) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli(*RUN, "--set", "reask.attempts=1")
        assert result.exit_code == 0, result.output
        sent = server.chat_count
        assert cli(*RUN, "--set", "reask.attempts=1").exit_code == 0
        assert server.chat_count == sent  # re-asks and their judgements come from the store too
    report = json.loads((workdir / OUT / "report.json").read_text())
    # the two romance outlines are recovered; the unreadable horror judgements stay dropped
    assert report["recovered"] == 2 and report["kept"] == 10
    assert report["steps"]["reask-1"]["requests"] == 4 and report["failed_records"] == 0
    lines = read_jsonl(workdir / OUT / "train.jsonl") + (
        read_jsonl(workdir / OUT / "valid.jsonl") if (workdir / OUT / "valid.jsonl").exists() else []
    )
    assert sum(line["messages"][-1]["content"].startswith("REASKED ") for line in lines) >= 2
