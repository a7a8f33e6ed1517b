"""compassionate-chatbot: topics incl. guardrails, turn parsing, both formats, end to end."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import read_jsonl
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins import compassionate_chatbot as cc

GOOD = """USER: Hi EVE, I could use some help.
EVE: Hello, I'm glad you reached out. What's on your mind?
USER: My son throws tantrums every evening.
EVE: That sounds exhausting. When do they usually start?
USER: Right before dinner, when he's hungry.
EVE: Hunger is a common trigger. Could a small snack at five help?"""

CANNED = {
    # kept as is
    "children throwing temper tantrums": GOOD,
    # preamble and markdown bold names: cleaned, kept
    "road rage and anger while driving": "Sure! Here is the chat:\n\n**USER:** Hi EVE.\n**EVE:** Hi! How are you?\n"
    "**USER:** Angry, mostly in traffic.\n**EVE:** What happens in your body then?\n"
    "**USER:** My hands grip the wheel.\n**EVE:** Let's try a breathing exercise together.",
    # model continued straight after the prompt's "USER:" cue, and ended on a user line
    "postpartum depression": " Hi EVE, I had a baby two months ago.\nEVE: Congratulations. How are you feeling?\n"
    "USER: Empty, honestly.\nEVE: Thank you for telling me. Have you spoken with your doctor?\n"
    "USER: Not yet.\nEVE: Please do; postpartum depression is common and treatable.\nUSER: Okay.",
    # two EVE turns in a row: dropped
    "navigating office politics": "USER: Hi EVE.\nEVE: Hello!\nEVE: How can I help?\nUSER: Office politics.\n"
    "EVE: Tell me more.\nUSER: My boss.\nEVE: I see.",
    # too short: dropped
    "burnout at work": "USER: Hi EVE.\nEVE: Hello! What brings you here?",
    # a refusal with no turns at all: dropped
    "asking for a raise": "I'm sorry, but I can't help with that.",
}


def responder(body: dict) -> str:
    prompt = body["messages"][-1]["content"]
    for topic, text in CANNED.items():
        if f"is: {topic}." in prompt:
            return text
    return GOOD


def test_guardrail_topics_carry_their_guidance_into_the_prompt() -> None:
    records = list(cc.source(settings=cc.ChatbotSourceSettings(), context=None))
    assert len(records) == len(cc.EVERYDAY) + len(cc.GUARDRAILS) == 51
    suicidal = next(r for r in records if "suicide" in r.data["topic"])
    assert suicidal.category == "guardrail"
    text = cc.prompt(record=suicidal, settings=cc.ChatbotPromptSettings())[0].messages[0].content
    assert "emergency" in text and "How EVE handles this:" in text and text.endswith("USER:")
    topics = " ".join(r.data["topic"] for r in records)
    for needle in ("feelings for EVE", "sexual advances", "suicide", "medical", "legal", "stocks"):
        assert needle in topics


def test_parse_turns() -> None:
    turns, error = cc.parse_turns(GOOD)
    assert error is None and len(turns) == 6 and turns[0] == ("USER", "Hi EVE, I could use some help.")
    assert cc.parse_turns("EVE: hi\nUSER: hello")[1] == "does not open with the user"
    assert cc.parse_turns("USER: a\nUSER: b")[1] == "turns do not alternate (USER twice at turn 2)"
    continued, _ = cc.parse_turns("USER: one\nmore of it\nEVE: ok")
    assert continued[0] == ("USER", "one\nmore of it")


def run(cli, workdir: Path, monkeypatch, *extra: str) -> tuple[dict, FakeOpenAI]:
    topics = json.dumps(list(CANNED))
    with FakeOpenAI(responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli(
            "run",
            "--preset",
            "compassionate-chatbot",
            "--yes",
            "--set",
            f"source.topics={topics}",
            "--set",
            "prompt.conversations_per_topic=1",
            "--set",
            "output.valid_fraction=0",  # every example in train.jsonl, in source order
            "--set",
            "eval.holdout=0",  # and no record held out for `tune eval`
            *extra,
        )
    assert result.exit_code == 0, result.output
    assert server.schema_errors == []
    return json.loads((workdir / "runs/compassionate-chatbot/report.json").read_text()), server


def test_end_to_end_chat(cli, workdir: Path, monkeypatch, line_validators) -> None:
    report, server = run(cli, workdir, monkeypatch)
    assert report["records"] == 6 + 6 and report["categories"] == {"everyday": 6, "guardrail": 6}
    assert server.chat_requests[0]["temperature"] == 0.7
    rejected = {
        r["record_id"]: r["reason"] for r in read_jsonl(workdir / "runs/compassionate-chatbot/rejected.jsonl")
    }
    assert rejected == {
        "topic:navigating office politics": "unparseable (turns do not alternate (EVE twice at turn 3))",
        "topic:burnout at work": "too few turns (2 < 6)",
        "topic:asking for a raise": "unparseable (no USER:/EVE: turns)",
    }
    train = read_jsonl(workdir / "runs/compassionate-chatbot/train.jsonl")
    assert len(train) == 3 + 6  # three kept everyday chats + six guardrail chats (GOOD)
    for line in train:
        assert not list(line_validators["chat"].iter_errors(line))
        roles = [m["role"] for m in line["messages"]]
        assert roles[0] == "system" and roles[-1] == "assistant"
        assert roles[1:] == ["user", "assistant"] * (len(roles[1:]) // 2)
        assert line["messages"][0]["content"].startswith("You are EVE")
        assert not any(
            "*" in m["content"] or m["content"].startswith(("USER", "EVE")) for m in line["messages"]
        )
    postpartum = train[2]["messages"]
    assert postpartum[1]["content"] == "Hi EVE, I had a baby two months ago."
    assert postpartum[-1]["content"].startswith("Please do")  # the dangling "USER: Okay." is gone


def test_completion_style_splits_at_each_eve_turn(cli, workdir: Path, monkeypatch, line_validators) -> None:
    run(cli, workdir, monkeypatch, "--set", "format.style=completion")
    train = read_jsonl(workdir / "runs/compassionate-chatbot/train.jsonl")
    assert len(train) == 9 * 3  # every kept chat has three EVE turns
    for line in train:
        assert not list(line_validators["completion"].iter_errors(line))
        assert line["prompt"].startswith("USER: ") and line["prompt"].endswith("\nEVE:")
        assert line["completion"].startswith(" ") and line["completion"].endswith("\nUSER:")
