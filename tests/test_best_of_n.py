"""best-of-n: n candidates per sample through the engine; the judge's best one is kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import read_jsonl
from synthtune.core import ChatMessage, GenerationRequest, SamplingParams
from synthtune.core.testing import FakeOpenAI, Reply, default_text
from synthtune.plugins.best_of_n import candidate_request, pick

OUT = Path("runs") / "plot-generator"
RUN = ["run", "--preset", "plot-generator", "--limit", "4", "--filter", "best-of-n", "--yes"]


def is_judge(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"].startswith("You are a strict, consistent judge")


def scripted(body: dict[str, Any]) -> Reply:
    """Each candidate's text carries its seed; the judge scores a candidate by that seed
    (seed 2 best, the original, without a seed, worst)."""
    if is_judge(body):
        answer = body["messages"][1]["content"].split("THE ANSWER:\n", 1)[1]
        seed = answer.split("]", 1)[0].split("seed=", 1)[1] if "seed=" in answer else "none"
        score = {"none": 4, "1": 6, "2": 9, "3": 5}[seed]
        return Reply(text=json.dumps({"score": score, "reason": f"seed {seed}"}))
    mark = f"[seed={body['seed']}] " if "seed" in body else ""
    return Reply(text=mark + default_text(body, 1200))


def test_candidates_are_their_own_requests_and_the_best_and_worst_are_picked() -> None:
    request = GenerationRequest(
        messages=[ChatMessage(role="user", content="hi")],
        params=SamplingParams(temperature=1.0),
        sample_index=1,
    )
    candidates = [candidate_request(request, i, 4) for i in range(1, 4)]
    assert [c.sample_index for c in candidates] == [5, 6, 7]
    assert [c.params.seed for c in candidates] == [1, 2, 3]
    assert len({c.compute_key() for c in [request, *candidates]}) == 4
    assert all(c.messages == request.messages and c.params.temperature == 1.0 for c in candidates)
    assert pick([4, 6, 9, 5]) == (2, 0)
    assert pick([None, 7, 7, None]) == (1, 2)  # a tie: the earlier is best, the later worst
    assert pick([None, None]) is None


def test_best_of_n_keeps_the_best_candidate_and_a_rerun_sends_nothing(
    cli, workdir: Path, monkeypatch
) -> None:
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli(*RUN)
        assert result.exit_code == 0, result.output
        # per record: the outline, 3 more candidates, 4 judgements
        assert server.chat_count == 4 * (1 + 3 + 4)
        candidates = [b for b in server.chat_requests if not is_judge(b) and "seed" in b]
        assert sorted(b["seed"] for b in candidates) == [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]
        report = json.loads((workdir / OUT / "report.json").read_text())
        assert report["steps"]["candidate-1"]["requests"] == 4 and report["steps"]["judge"]["requests"] == 16
        assert report["kept"] == 4
        lines = read_jsonl(workdir / OUT / "train.jsonl") + (
            read_jsonl(workdir / OUT / "valid.jsonl") if (workdir / OUT / "valid.jsonl").exists() else []
        )
        assert len(lines) == 4
        assert all(line["messages"][-1]["content"].startswith("[seed=2] ") for line in lines)  # the best

        sent = server.chat_count
        rerun = cli(*RUN)
        assert rerun.exit_code == 0, rerun.output
        assert server.chat_count == sent and server.answered_twice() == []


def test_min_score_drops_a_sample_whose_best_candidate_is_too_weak(cli, workdir: Path, monkeypatch) -> None:
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli(*RUN, "--set", "filter.best-of-n.min_score=10", "--set", "filter.best-of-n.n=2")
        assert result.exit_code != 0 or "dropped" in result.output  # nothing left to write
        assert server.chat_count == 4 * (1 + 1 + 2)
    rejected = read_jsonl(workdir / OUT / "rejected.jsonl")
    assert len(rejected) == 4
    assert {r["reason"] for r in rejected} == {"below min_score (best of 2: 6 < 10)"}
    assert {r["score"] for r in rejected} == {6}


@pytest.mark.usefixtures("encodings")
def test_estimate_counts_every_candidate_and_judgement(cli, workdir: Path) -> None:
    result = cli("estimate", "--preset", "plot-generator", "--limit", "4", "--filter", "best-of-n", "--json")
    assert result.exit_code == 0, result.output
    steps = json.loads(result.output)["steps"]
    assert {name: figures["total"]["requests"] for name, figures in steps.items()} == {
        "prompt": 4,
        "candidate-1": 4,
        "candidate-2": 4,
        "candidate-3": 4,
        "judge": 16,
    }
