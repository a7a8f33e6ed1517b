"""agent-chat: structured-output requests, grounding filter, both training layouts end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import read_jsonl
from synthtune.core.testing import FakeOpenAI
from synthtune.plugins.agent_chat import react_problems, tool_call_problems
from synthtune.plugins.agent_chat.grounding import grounding, missing_numbers, parse_example

FERRY = (
    "The lake ferry between Wendholm and Osterby will switch to a battery-electric boat in April. "
    "The new vessel carries 120 passengers and 20 bicycles, and recharges in twelve minutes at each "
    "end of the 7-kilometre crossing. Tickets will not change in price."
)
BREAD = (
    "Bread goes stale mostly because its starch slowly recrystallises, not because it dries out. "
    "The starch molecules line up again and squeeze water out, which makes the crumb firm. This "
    "happens fastest at fridge temperatures, and freezing stops it almost completely."
)
VET = (
    "VET: So this is Biscuit. What's been going on?\nOWNER: He's been drinking a lot more water for "
    "about two weeks.\nVET: Increased thirst in an older dog can point to diabetes or kidney "
    "problems. I'd like to take blood and a urine sample today."
)
LIBRARY = (
    "The Northvale library network will stop charging fines for overdue books from next month. "
    "Fines brought in about 38,000 euros last year, less than the cost of collecting them. "
    "Borrowers will still pay for books they lose or damage."
)
MILL = (
    "Volunteers in the hill village of Carrow have brought the village water mill back into working "
    "order. The oak wheel, 4.2 metres across, was rebuilt over two winters by a retired carpenter "
    "and apprentices from the trade college."
)


def good(question: str, query: str, answer: str) -> str:
    return json.dumps({"question": question, "search_query": query, "final_answer": answer})


# title -> (kind, passage, the teacher's canned answer)
CASES: dict[str, tuple[str, str, str]] = {
    "Ferry": (
        "news",
        FERRY,
        good(
            "How many passengers can the new Wendholm to Osterby ferry carry?",
            "Wendholm Osterby electric ferry capacity",
            "The new battery-electric ferry carries 120 passengers and 20 bicycles, and it recharges "
            "in twelve minutes at each end of the crossing.",
        ),
    ),
    "Bread": (
        "qa",
        BREAD,
        "```json\n"
        + good(
            "Why does bread go stale?",
            "why bread goes stale starch",
            "Mostly because its starch slowly recrystallises and squeezes water out, which makes the "
            "crumb firm. It happens fastest in the fridge, and freezing stops it.",
        )
        + "\n```",
    ),
    "Vet": (
        "dialog",
        VET,
        good(
            "My older dog is drinking a lot more water, what could that mean?",
            "older dog increased thirst",
            "Increased thirst in an older dog can point to diabetes or kidney problems, so a vet "
            "would take blood and a urine sample.",
        ),
    ),
    "BadJson": (
        "news",
        LIBRARY,
        '{"question": "Are there library fines?", "search_query": "fines" "final_answer": "No."}',
    ),
    "Missing": (
        "news",
        LIBRARY + " Missing.",
        json.dumps({"question": "Q?", "search_query": "library fines"}),
    ),
    "Ungrounded": (
        "news",
        LIBRARY + " Ungrounded.",
        good(
            "Why is Northvale dropping library fines?",
            "Northvale library fines",
            "Solar panels on the depot roof power the trams during sunny afternoons, saving money.",
        ),
    ),
    "Invented": (
        "news",
        MILL,
        good(
            "When was the Carrow water mill built?",
            "Carrow water mill",
            "The Carrow water mill was built in 1987 and its oak wheel is 4.2 metres across.",
        ),
    ),
    "Refers": (
        "news",
        MILL + " Refers.",
        good(
            "What does the passage say about the mill wheel?",
            "Carrow mill wheel",
            "The oak wheel is 4.2 metres across and was rebuilt over two winters.",
        ),
    ),
}
KEPT = {"Ferry", "Bread", "Vet"}
DROPPED = {
    "BadJson": re.compile(r"invalid JSON \(Expecting ',' delimiter at line 1 column \d+\)"),
    "Missing": re.compile(r"missing field \(final_answer: absent\)"),
    "Ungrounded": re.compile(r"ungrounded answer \(\d+% of its content words are in the passage, < 60%\)"),
    "Invented": re.compile(r"ungrounded answer \(number 1987 is not in the passage\)"),
    "Refers": re.compile(
        r"question refers to the passage \('What does the passage say about the mill wheel\?'\)"
    ),
}
REACT_BLOB = re.compile(r"^```json\n(.*)\n```$", re.DOTALL)


def teacher(body: dict[str, Any]) -> str:
    """The canned answer for the passage (asked again after a reply that does not match the
    schema, it gives the same answer)."""
    prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
    title = re.search(r"PASSAGE:\n\n(\w+)\n", prompt)
    assert title, prompt[:200]
    return CASES[title.group(1)][2]


def make_corpus(root: Path) -> Path:
    folder = root / "docs"
    folder.mkdir()
    rows = [{"kind": kind, "title": title, "text": text} for title, (kind, text, _) in CASES.items()]
    (folder / "docs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def title_of(record_id: str) -> str:
    return list(CASES)[int(record_id.rsplit(":", 1)[1]) - 1]


def run_agent_chat(cli, workdir: Path, style: str) -> Path:
    corpus = workdir / "docs" if (workdir / "docs").exists() else make_corpus(workdir)
    out = workdir / style
    result = cli(
        "run", "--preset", "agent-chat", "--set", f"source.path={corpus}",
        "--set", f"format.style={style}", "--out", str(out), "--yes",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def check_rejected(out: Path) -> None:
    rejected = read_jsonl(out / "rejected.jsonl")
    reasons = {title_of(r["record_id"]): r["reason"] for r in rejected}
    assert set(reasons) == set(DROPPED)
    for title, pattern in DROPPED.items():
        assert pattern.fullmatch(reasons[title]), reasons[title]


def test_agent_chat_react_json_end_to_end(
    cli, fake_openai: FakeOpenAI, workdir: Path, line_validators
) -> None:
    fake_openai.responder = teacher
    out = run_agent_chat(cli, workdir, "react-json")

    # every request asked the teacher for strict structured output (bodies schema-checked by the
    # fixture); the two replies that do not match the schema were asked again once, with the error
    assert fake_openai.chat_count == len(CASES) + 2
    reasks = [b["messages"][-1]["content"] for b in fake_openai.chat_requests if len(b["messages"]) > 2]
    assert sorted(reasks) == [
        "Your reply does not match the JSON schema: 'final_answer' is a required property. Reply "
        "again with only the JSON object, matching the schema exactly.",
        "Your reply does not match the JSON schema: it is not valid JSON (Expecting ',' delimiter: "
        "line 1 column 66 (char 65)). Reply again with only the JSON object, matching the schema exactly.",
    ]
    for body in fake_openai.chat_requests:
        assert body["model"] == "gpt-4.1"
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        schema = fmt["json_schema"]["schema"]
        assert schema["required"] == ["question", "search_query", "final_answer"]
        assert schema["additionalProperties"] is False

    check_rejected(out)
    lines = read_jsonl(out / "train.jsonl")
    assert len(lines) == len(KEPT)
    assistant_turns = parsed = 0
    for line in lines:
        assert [e.message for e in line_validators["chat"].iter_errors(line)] == []
        messages = line["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
        assert messages[0]["content"].startswith("Assistant is a large language model")
        instructions = messages[1]["content"]
        for heading in ("TOOLS\n", "RESPONSE FORMAT INSTRUCTIONS", "USER'S INPUT"):
            assert heading in instructions
        tools = set(re.findall(r"^> ([^:\n]+):", instructions, re.MULTILINE))
        assert tools == {"search"}
        actions = []
        for message in messages:
            if message["role"] != "assistant":
                continue
            assistant_turns += 1
            blob = json.loads(REACT_BLOB.fullmatch(message["content"]).group(1))  # type: ignore[union-attr]
            assert set(blob) == {"action", "action_input"}
            assert blob["action"] in tools | {"Final Answer"}
            assert isinstance(blob["action_input"], str) and blob["action_input"]
            parsed += 1
            actions.append(blob["action"])
        assert actions == ["search", "Final Answer"]
        assert messages[3]["content"].startswith("TOOL RESPONSE:\n")
        title = messages[3]["content"].split("\n")[2]
        assert title in KEPT and CASES[title][1] in messages[3]["content"]
        assert react_problems(line, {"search"}) == []
    assert assistant_turns == parsed == 2 * len(KEPT)  # 100% of the assistant JSON parses


def test_agent_chat_tool_calls_end_to_end(
    cli, fake_openai: FakeOpenAI, workdir: Path, line_validators
) -> None:
    fake_openai.responder = teacher
    run_agent_chat(cli, workdir, "react-json")
    out = run_agent_chat(cli, workdir, "tool-calls")
    assert fake_openai.chat_count == len(CASES) + 2  # the second style reused every generation

    check_rejected(out)
    lines = read_jsonl(out / "train.jsonl")
    assert len(lines) == len(KEPT)
    for line in lines:
        assert [e.message for e in line_validators["chat"].iter_errors(line)] == []
        tools = {tool["function"]["name"] for tool in line["tools"]}
        assert tools == {"search"}
        messages = line["messages"]
        assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "assistant"]
        (call,) = messages[2]["tool_calls"]
        assert call["type"] == "function" and call["function"]["name"] in tools
        arguments = json.loads(call["function"]["arguments"])
        assert set(arguments) == {"query"} and arguments["query"]
        assert messages[3]["tool_call_id"] == call["id"]
        assert messages[4]["content"] and "tool_calls" not in messages[4]
        assert tool_call_problems(line) == []


# -- units ---------------------------------------------------------------------------------------------


def test_grounding_checks() -> None:
    assert grounding("The ferry carries passengers and bicycles.", FERRY) == 1.0
    assert grounding("Solar panels power trams.", FERRY) == 0.0
    assert (
        missing_numbers("It carries 120 people and cost 1,500 euros.", FERRY + " It cost 1500 euros.") == []
    )
    assert missing_numbers("It carries 150 people.", FERRY) == ["150"]
    assert parse_example('["a"]') == (None, "invalid JSON (expected an object, got list)")
    assert parse_example(good("Q?", "q", "   ")) == (None, "missing field (final_answer: empty)")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('```json\n{"action": "browse", "action_input": "x"}\n```', "action 'browse' is not a listed tool"),
        ('```json\n{"action": "search", "action_input": "x"\n```', "invalid JSON"),
        (
            'Sure!\n```json\n{"action": "search", "action_input": "x"}\n```',
            "not a single ```json code snippet",
        ),
        ('```json\n{"action": "search", "action_input": 3}\n```', "must be strings"),
    ],
)
def test_react_validator_rejects_bad_assistant_json(content: str, problem: str) -> None:
    final = '```json\n{"action": "Final Answer", "action_input": "done"}\n```'
    line = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": content},
                         {"role": "assistant", "content": final}]}  # fmt: skip
    problems = react_problems(line, {"search"})
    assert len(problems) == 1 and problem in problems[0]


def test_tool_calls_validator_rejects_unlisted_tools_and_bad_arguments() -> None:
    tools = [{"type": "function", "function": {"name": "search", "parameters": {"required": ["query"]}}}]

    def line(name: str, arguments: str) -> dict[str, Any]:
        call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}
        return {"tools": tools, "messages": [{"role": "assistant", "tool_calls": [call]}]}

    assert tool_call_problems(line("search", '{"query": "x"}')) == []
    assert "not listed" in tool_call_problems(line("browse", '{"query": "x"}'))[0]
    assert "not JSON" in tool_call_problems(line("search", '{"query": '))[0]
    assert "lack ['query']" in tool_call_problems(line("search", "{}"))[0]


def first_sentence_teacher(body: dict[str, Any]) -> str:
    """A well-behaved teacher for any passage: the passage's first sentence as the answer."""
    prompt = body["messages"][-1]["content"]
    passage = prompt.split("PASSAGE:\n\n", 1)[1].split("\n\nEND PASSAGE", 1)[0]
    body_text = passage.split("\n\n")[-1]
    sentence = re.split(r"(?<=[.!?])\s", body_text, maxsplit=1)[0]
    words = re.findall(r"[A-Za-z]{4,}", body_text)[:3]
    return good(f"Can you tell me about {' '.join(words)}?", " ".join(words), sentence)


@pytest.mark.parametrize("style", ["react-json", "tool-calls"])
def test_preset_runs_out_of_the_box_on_the_sample_corpus(
    cli, fake_openai: FakeOpenAI, workdir: Path, line_validators, style: str
) -> None:
    fake_openai.responder = first_sentence_teacher
    result = cli("run", "--preset", "agent-chat", "--limit", "10", "--set", f"format.style={style}", "--yes")
    assert result.exit_code == 0, result.output
    out = workdir / "runs" / "agent-chat"
    report = json.loads((out / "report.json").read_text())
    assert report["categories"] == {"dialog": 2, "news": 2, "reddit": 2, "medical": 2, "qa": 2}
    lines = read_jsonl(out / "train.jsonl")
    assert len(lines) == 10 and report["dropped_total"] == 0
    for line in lines:
        assert [e.message for e in line_validators["chat"].iter_errors(line)] == []
        problems = tool_call_problems(line) if style == "tool-calls" else react_problems(line, {"search"})
        assert problems == []
