"""Dataset lines checked against a provider's rules before any upload (core/jobs/lines.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthtune.core.jobs.lines import DatasetRejected, LineRules, check_file

TOGETHER = LineRules(provider="Together", min_examples=1, alternate=True, weight=True)
FIREWORKS = LineRules(
    provider="Fireworks", min_examples=3, weight=True, input_keys=frozenset({"messages", "tools"})
)


def pair(**change: object) -> dict:
    line: dict = {
        "input": {"messages": [{"role": "user", "content": "Pitch a film."}]},
        "preferred_output": [{"role": "assistant", "content": "A vivid pitch."}],
        "non_preferred_output": [{"role": "assistant", "content": "A film."}],
    }
    line.update(change)
    return line


def write(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_good_files_give_their_kind_and_count(tmp_path: Path) -> None:
    chat = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                         {"role": "assistant", "content": "a", "weight": 1}]}  # fmt: skip
    assert check_file(write(tmp_path / "c.jsonl", [chat] * 3), FIREWORKS) == ("chat", 3)
    assert check_file(write(tmp_path / "p.jsonl", [pair()] * 2), TOGETHER) == ("preference", 2)
    with_tools = pair(input={"messages": [{"role": "user", "content": "u"}], "tools": []})
    assert check_file(write(tmp_path / "t.jsonl", [with_tools] * 3), FIREWORKS) == ("preference", 3)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (pair(preferred_output=[]), "preferred_output must be a list of exactly one assistant message"),
        (pair(non_preferred_output=[{"role": "user", "content": "x"}]), "non_preferred_output[0].role must be 'assistant'"),
        (pair(input={"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}),
         "input.messages must not end with an assistant message"),
        (pair(input={"messages": [{"role": "user", "content": "u"}], "tools": []}), "input has key(s) ['tools']"),
        (pair(extra=1), "key(s) ['extra'] are not taken by Together in preference lines"),
        ({"messages": [{"role": "user", "content": "u"}, {"role": "system", "content": "s"},
                       {"role": "assistant", "content": "a"}]}, "a system message may only come first"),
        ({"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "a"}]},
         "messages[0].content must be a non-empty string"),
        ({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a", "weight": 2}]},
         "messages[1].weight must be 0 or 1"),
        ({"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a", "name": "x"}]},
         "messages[1] has key(s) ['name'] that Together does not take"),
    ],
)  # fmt: skip
def test_each_broken_rule_names_the_file_the_line_and_the_problem(
    tmp_path: Path, line: dict, problem: str
) -> None:
    path = write(
        tmp_path / "bad.jsonl", [pair(), line] if "input" in line or "preferred_output" in line else [line]
    )
    with pytest.raises(DatasetRejected) as caught:
        check_file(path, TOGETHER)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_mixed_kinds_bad_json_and_bad_bytes(tmp_path: Path) -> None:
    chat = {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}
    mixed = write(tmp_path / "mixed.jsonl", [chat, pair()])
    with pytest.raises(DatasetRejected, match="line 2: a preference line in a chat file"):
        check_file(mixed, TOGETHER)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps(chat) + "\n{not json\n")
    with pytest.raises(DatasetRejected, match="line 2: not JSON"):
        check_file(broken, TOGETHER)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps(chat).encode() + b"\n\xff\xfe\n")
    with pytest.raises(DatasetRejected, match="not UTF-8"):
        check_file(latin, TOGETHER)


def test_a_validation_file_too_small_for_the_provider_is_left_out(tmp_path: Path, caplog) -> None:
    from synthtune.core.jobs.lines import usable_validation
    from synthtune.core.models import DatasetFiles

    chat = {"messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]}
    train = write(tmp_path / "train.jsonl", [chat] * 5)
    small = DatasetFiles(train=train, valid=write(tmp_path / "valid.jsonl", [chat]))
    usable_validation(small, FIREWORKS, "chat")
    assert small.valid is None
    assert "fewer than the 3 Fireworks needs for a validation file: training without one" in caplog.text
    enough = DatasetFiles(train=train, valid=write(tmp_path / "valid3.jsonl", [chat] * 3))
    usable_validation(enough, FIREWORKS, "chat")
    assert enough.valid == tmp_path / "valid3.jsonl"
    broken = DatasetFiles(train=train, valid=write(tmp_path / "bad.jsonl", [pair()]))
    with pytest.raises(DatasetRejected, match="a preference line in a chat file"):
        usable_validation(broken, FIREWORKS, "chat")
