"""question-generator: the question filter, and `tune run` end to end against the fake server."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from conftest import read_jsonl
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.question_generator import extract_questions

FILLER = " The rest of this passage is filler so that it is long enough for the corpus minimum length." * 3

# passage marker -> the canned generation the fake teacher returns for it
ANSWERS = {
    "ALPHA": (
        "What is the alpha project?\nWho leads it?\nWhy did it start now?\n"
        "How will it be paid for?\nWhat happens next?"
    ),
    "BULLETS": (
        "Here are the questions:\n- What did the council decide?\n* Who voted against it?\n"
        "1. How much will it cost?\n2) When does it start?"
    ),
    "STATEMENTS": (
        "What caused the delay?\nThe passage describes a delay.\nWho was affected?\n"
        "Note: the tone is neutral.\nHow long did it last?\nWill it happen again?"
    ),
    "THREE": "What is the main event?\nWho is involved?\nWhy does it matter?",
    "NONE": "The passage is about a bakery.\nIt has two speakers.\nThe tone is friendly.",
    "DUPES": "What is going on?\nWhat is going on?\n- what is going on?\nWho is speaking?\nWhy now?",
}
EXPECTED_KEPT = {
    "ALPHA": ANSWERS["ALPHA"].splitlines(),
    "BULLETS": [
        "What did the council decide?",
        "Who voted against it?",
        "How much will it cost?",
        "When does it start?",
    ],
    "STATEMENTS": [
        "What caused the delay?",
        "Who was affected?",
        "How long did it last?",
        "Will it happen again?",
    ],
}
EXPECTED_DROPPED = {
    "THREE": "too few questions (3 < 4)",
    "NONE": "too few questions (0 < 4)",
    "DUPES": "too few questions (2 < 4)",  # "Why now?" is under min_question_chars too
}


def user_text(body: dict[str, Any]) -> str:
    return next(m["content"] for m in body["messages"] if m["role"] == "user")


def canned(body: dict[str, Any]) -> str:
    text = user_text(body)
    return next(answer for marker, answer in ANSWERS.items() if f"Passage {marker}." in text)


def make_corpus(root: Path) -> Path:
    folder = root / "corpus"
    folder.mkdir()
    rows = [
        {"kind": "news" if i % 2 else "dialog", "text": f"Passage {m}.{FILLER}"}
        for i, m in enumerate(ANSWERS)
    ]
    (folder / "p.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def marker_of(record_id: str, corpus: Path) -> str:
    line = int(record_id.rsplit(":", 1)[1])
    return list(ANSWERS)[line - 1]


def test_extract_questions_strips_bullets_and_keeps_only_questions() -> None:
    text = (
        '1. What is it?\n  - Why?\nA statement.\n(3) "Who said so?"\n'
        "**How big is it?**\nQ4: When?\n1.5 million people?"
    )
    assert extract_questions(text) == [
        "What is it?",
        "Why?",
        "Who said so?",
        "How big is it?",
        "When?",
        "1.5 million people?",
    ]


def test_question_generator_end_to_end(cli, fake_openai: FakeOpenAI, workdir: Path, line_validators) -> None:
    fake_openai.responder = canned
    corpus = make_corpus(workdir)
    result = cli("run", "--preset", "question-generator", "--set", f"source.path={corpus}", "--yes")
    assert result.exit_code == 0, result.output
    out = workdir / "runs" / "question-generator"

    # the request: passage between markers, the original's sampling
    assert fake_openai.chat_count == len(ANSWERS)
    body = fake_openai.chat_requests[0]
    prompt = user_text(body)
    assert prompt.startswith("PASSAGE:\n\nPassage ") and "\n\nEND PASSAGE\n\n" in prompt
    assert "most important and salient questions an observer would ask" in prompt
    sampling = {
        k: body.get(k) for k in ("temperature", "top_p", "frequency_penalty", "presence_penalty", "stop")
    }
    assert sampling == {
        "temperature": 0.9,
        "top_p": 0.95,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.5,
        "stop": ["\n\n"],
    }
    assert body["max_completion_tokens"] == 200

    rejected = read_jsonl(out / "rejected.jsonl")
    dropped = {marker_of(r["record_id"], corpus): r["reason"] for r in rejected}
    assert dropped == EXPECTED_DROPPED
    assert {r["filter"] for r in rejected} == {"question-generator"}

    lines = read_jsonl(out / "train.jsonl")
    assert len(lines) == len(EXPECTED_KEPT)
    kept = {}
    for line in lines:
        assert [e.message for e in line_validators["chat"].iter_errors(line)] == []
        roles = [m["role"] for m in line["messages"]]
        assert roles == ["system", "user", "assistant"]
        marker = line["messages"][1]["content"].split(".")[0].removeprefix("Passage ")
        kept[marker] = line["messages"][2]["content"].split("\n")
    assert kept == EXPECTED_KEPT

    report = json.loads((out / "report.json").read_text())
    assert report["dropped"] == {"question-generator: too few questions": 3}

    # prompt/completion form from the same generations: no new requests
    again = cli(
        "run", "--preset", "question-generator", "--set", f"source.path={corpus}",
        "--set", "format.style=completion", "--out", "completion", "--yes",
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert fake_openai.chat_count == len(ANSWERS)
    completions = read_jsonl(workdir / "completion" / "train.jsonl")
    assert len(completions) == 3
    for line in completions:
        assert [e.message for e in line_validators["completion"].iter_errors(line)] == []
        assert line["prompt"].startswith("Passage ") and line["prompt"].endswith("\n\nQUESTIONS:")
        assert line["completion"].startswith(" ") and line["completion"].endswith("?\n\nEND")


def test_more_samples_per_passage_rescue_a_short_first_answer(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    """samples_per_passage=2 sends each passage twice (sample_index 0 and 1). The fake answers a
    body's first request with 3 questions and its second with 5: every passage keeps one sample."""
    calls: Counter[str] = Counter()

    def first_short(body: dict[str, Any]) -> str:
        key = user_text(body)
        calls[key] += 1
        return ANSWERS["THREE"] if calls[key] == 1 else ANSWERS["ALPHA"]

    fake_openai.responder = first_short
    corpus = make_corpus(workdir)
    args = ("run", "--preset", "question-generator", "--set", f"source.path={corpus}", "--yes")
    result = cli(*args, "--set", "prompt.samples_per_passage=2")
    assert result.exit_code == 0, result.output
    out = workdir / "runs" / "question-generator"
    assert fake_openai.chat_count == 2 * len(ANSWERS)
    assert len(read_jsonl(out / "train.jsonl")) == len(ANSWERS)
    rejected = read_jsonl(out / "rejected.jsonl")
    assert sorted(r["record_id"] for r in rejected) == sorted(f"p.jsonl:{i}" for i in range(1, 7))
    assert {r["reason"] for r in rejected} == {"too few questions (3 < 4)"}


def test_preset_runs_out_of_the_box_on_the_sample_corpus(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    fake_openai.responder = lambda body: ANSWERS["ALPHA"]
    result = cli("run", "--preset", "question-generator", "--limit", "10", "--yes")
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "runs" / "question-generator" / "report.json").read_text())
    assert report["categories"] == {"dialog": 2, "news": 2, "reddit": 2, "medical": 2, "qa": 2}
    assert report["examples"] == {"train": 10}
