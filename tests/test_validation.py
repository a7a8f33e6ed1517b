"""`tune validate`: schema and cookbook checks with line numbers, tokens, epochs and cost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tiktoken
from synthtune.core.pricing import price_table
from synthtune.core.spend import default_epochs
from synthtune.core.testing import FakeOpenAI
from synthtune.core.validation import token_limit, validate_file


def _chat(user: str, answer: str = "A fine answer.", system: bool = True) -> dict:
    messages = [{"role": "system", "content": "You help."}] if system else []
    return {
        "messages": [*messages, {"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    }


TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]


def _tool_line(name: str, arguments: str) -> dict:
    call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return {
        "tools": TOOLS,
        "messages": [
            {"role": "system", "content": "You search."},
            {"role": "user", "content": "Find it."},
            {"role": "assistant", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "found"},
            {"role": "assistant", "content": "Here it is."},
        ],
    }


# line number -> (text, the error code that line must produce)
DEFECTS: dict[int, tuple[str, str]] = {
    2: ('{"messages": [{"role": "user", "content": "cut off', "invalid_json"),
    3: ("[1, 2, 3]", "not_object"),
    4: (json.dumps({**_chat("extra key"), "label": "x"}), "unknown_key"),
    5: (json.dumps({"tools": TOOLS}), "missing_messages"),
    6: (
        json.dumps(
            {"messages": [{"role": "robot", "content": "beep"}, {"role": "assistant", "content": "x"}]}
        ),
        "unknown_role",
    ),
    7: (
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "hi", "mood": "happy"},
                    {"role": "assistant", "content": "hello"},
                ]
            }
        ),
        "unknown_message_key",
    ),
    8: (
        json.dumps({"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}),
        "missing_content",
    ),
    9: (json.dumps(_chat("empty answer", answer="  ")), "empty_content"),
    10: (
        json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}),
        "no_assistant_message",
    ),
    11: (json.dumps(_tool_line("browse", '{"q": "x"}')), "unknown_tool"),
    12: (json.dumps(_tool_line("search", '{"q": ')), "bad_tool_arguments"),
    13: (json.dumps({"prompt": "Genre: x", "completion": " y"}), "mixed_kinds"),
    14: (json.dumps(_chat("long " * 17_000)), "too_many_tokens"),
    15: (
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "w"},
                    {"role": "assistant", "content": "a", "weight": 2},
                ]
            }
        ),
        "schema",
    ),
}
CLEAN_LINES = [1, 16, 17]  # 16 and 17 lack a system message: warnings, not errors


def _defect_file(path: Path) -> Path:
    lines = {1: json.dumps(_chat("first")), 16: json.dumps(_chat("a", system=False))}
    lines[17] = json.dumps(_chat("b", system=False))
    lines.update({n: text for n, (text, _) in DEFECTS.items()})
    path.write_text("\n".join(lines[n] for n in sorted(lines)) + "\n")
    return path


@pytest.mark.usefixtures("encodings")
def test_every_defect_is_found_on_its_line(workdir: Path) -> None:
    report = validate_file(_defect_file(workdir / "bad.jsonl"), model="gpt-3.5-turbo")
    by_line: dict[int | None, set[str]] = {}
    for issue in report.errors:
        by_line.setdefault(issue.line, set()).add(issue.code)
    for number, (_, code) in DEFECTS.items():
        assert code in by_line.get(number, set()), (number, code, by_line.get(number))
    assert set(by_line) == set(DEFECTS)  # no error on a clean line, none for the whole file
    assert len({code for _, code in DEFECTS.values()}) >= 10
    warned = {(i.line, i.code) for i in report.warnings}
    assert {(16, "no_system_message"), (17, "no_system_message"), (14, "outlier")} <= warned
    assert not report.ok


@pytest.mark.usefixtures("encodings")
def test_cli_lists_errors_with_line_numbers_and_exits_1(cli, workdir: Path) -> None:
    path = _defect_file(workdir / "bad.jsonl")
    result = cli("validate", str(path), "--model", "gpt-3.5-turbo")
    assert result.exit_code == 1, result.output
    for number, (_, code) in DEFECTS.items():
        assert f"line {number}: " in result.output and f"[{code}]" in result.output
    assert "too_many_tokens" in result.output and "16385-token limit" in result.output
    as_json = cli("validate", str(path), "--model", "gpt-3.5-turbo", "--json")
    payload = json.loads(as_json.stdout)
    assert payload["ok"] is False and as_json.exit_code == 1
    assert {(i["line"], i["code"]) for i in payload["issues"]} >= {(n, c) for n, (_, c) in DEFECTS.items()}


@pytest.mark.usefixtures("encodings")
def test_fewer_than_ten_examples_is_an_error(cli, workdir: Path) -> None:
    path = workdir / "small.jsonl"
    path.write_text("".join(json.dumps(_chat(f"q{i}")) + "\n" for i in range(9)))
    result = cli("validate", str(path))
    assert result.exit_code == 1
    assert "9 examples; OpenAI needs at least 10 [too_few_examples]" in result.output


@pytest.mark.usefixtures("encodings")
def test_a_dataset_synthtune_made_is_clean_and_tokens_match_tiktoken(
    cli, fake_openai: FakeOpenAI, workdir: Path
) -> None:
    run = cli("run", "--preset", "plot-generator", "--limit", "14", "--yes")
    assert run.exit_code == 0, run.output
    path = workdir / "runs" / "plot-generator" / "train.jsonl"
    result = cli("validate", str(path), "--model", "gpt-4.1-mini", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    examples = json.loads((path.parent / "report.json").read_text())["examples"]["train"]
    assert payload["ok"] is True and payload["kind"] == "chat" and payload["examples"] == examples >= 10
    assert [i for i in payload["issues"] if i["level"] == "error"] == []

    # Independent count: tiktoken's o200k_base (gpt-4.1-mini's encoding), the cookbook's framing.
    encoding = tiktoken.get_encoding("o200k_base")
    expected = []
    for line in path.read_text().splitlines():
        messages = json.loads(line)["messages"]
        expected.append(3 + sum(3 + sum(len(encoding.encode(v)) for v in m.values()) for m in messages))
    assert payload["example_tokens"] == expected
    assert payload["tokens"]["max"] == max(expected) and payload["tokens"]["total"] == sum(expected)
    epochs = 100 // examples  # auto, for 4 to 25 examples (the seeded split decides how many)
    assert 4 <= examples <= 25 and payload["epochs"] == epochs
    assert payload["billed_tokens"] == sum(expected) * epochs
    assert payload["cost_usd"] == pytest.approx(sum(expected) * epochs * 5.00 / 1_000_000)
    assert payload["cost_usd"] == price_table().training_cost("gpt-4.1-mini", sum(expected) * epochs)

    human = cli("validate", str(path))
    assert human.exit_code == 0 and "valid: 0 error(s)" in human.output


@pytest.mark.usefixtures("encodings")
def test_cl100k_models_count_with_their_own_encoding(workdir: Path) -> None:
    path = workdir / "d.jsonl"
    lines = [_chat(f"question number {i} about résumé tokens") for i in range(10)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    report = validate_file(path, model="gpt-3.5-turbo-0125")
    encoding = tiktoken.get_encoding("cl100k_base")
    first = lines[0]["messages"]
    assert report.example_tokens[0] == 3 + sum(
        3 + sum(len(encoding.encode(v)) for v in m.values()) for m in first
    )
    assert report.token_limit == 16_385 and report.ok


def test_auto_epochs_follow_the_cookbook() -> None:
    assert default_epochs(10) == 10  # 100 // 10
    assert default_epochs(3) == 25  # capped at MAX_DEFAULT_EPOCHS
    assert default_epochs(50) == 3
    assert default_epochs(10_000) == 2  # 25000 // 10000
    assert default_epochs(30_000) == 1


def test_token_limits_by_model() -> None:
    assert token_limit("gpt-4o-mini-2024-07-18") == 65_536
    assert token_limit("ft:gpt-4.1-mini-2025-04-14:org:x:abc") == 65_536
    assert token_limit("gpt-3.5-turbo") == 16_385
    assert token_limit("some-new-model") == 16_385


@pytest.mark.usefixtures("encodings")
def test_completion_and_preference_files_validate(workdir: Path) -> None:
    completion = workdir / "c.jsonl"
    completion.write_text(
        "".join(
            json.dumps({"prompt": f"p{i}\n\nPLOT OUTLINE:", "completion": f" o{i}"}) + "\n" for i in range(10)
        )
    )
    report = validate_file(completion, model="gpt-4.1-mini")
    assert report.kind == "completion" and report.ok, report.issues
    preference = workdir / "p.jsonl"
    line = {
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello!"}],
        "non_preferred_output": [{"role": "assistant", "content": "What."}],
    }
    bad = {**line, "non_preferred_output": []}
    preference.write_text("".join(json.dumps(line) + "\n" for _ in range(10)) + json.dumps(bad) + "\n")
    report = validate_file(preference, model="gpt-4.1-mini")
    assert report.kind == "preference"
    assert [(i.line, i.code) for i in report.errors] == [(11, "missing_content")]


def test_missing_file_is_one_line_error(cli, workdir: Path) -> None:
    result = cli("validate", "nope.jsonl")
    assert result.exit_code == 2 and "no such file: nope.jsonl" in result.output


def test_the_fast_schema_path_agrees_with_the_full_schema(workdir: Path) -> None:
    from synthtune.core.line_checks import _chat_line_is_valid, _validators

    path = _defect_file(workdir / "bad.jsonl")
    lines = []
    for text in path.read_text().splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    lines += [{"messages": []}, {"messages": [{"role": "user", "content": ["not a part"]}]}, {}]
    lines.append({"messages": [{"role": "user", "content": "x"}], "parallel_tool_calls": "yes"})
    verdicts = [(_chat_line_is_valid(line), _validators()["chat"].is_valid(line)) for line in lines]
    # The fast path says valid exactly when the full schema does (it leaves lines without
    # messages to the full check, which reports them through missing_messages instead).
    assert [fast for fast, _ in verdicts] == [
        full and "messages" in line for (_, full), line in zip(verdicts, lines, strict=True)
    ]
