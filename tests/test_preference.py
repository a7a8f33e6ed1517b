"""preference: best-of-n's best and worst candidates as preference lines (OpenAI and TRL DPO)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import read_dataset, read_jsonl
from synthtune.core import ChatMessage, GenerationOutcome, GenerationRequest, Record, Sample
from synthtune.core.errors import ConfigError
from synthtune.core.testing import FakeOpenAI, Reply, default_text
from synthtune.plugins.preference import PreferenceFormatSettings, preference_line

OUT = Path("runs") / "plot-preferences"
PRESET = """
extends = "plot-generator"
name = "plot-preferences"

[[filter_append]]
plugin = "best-of-n"
n = 3

[format]
plugin = "preference"

[output]
valid_fraction = 0.0
"""


def is_judge(body: dict[str, Any]) -> bool:
    return body["messages"][0]["content"].startswith("You are a strict, consistent judge")


def scripted(body: dict[str, Any]) -> Reply:
    """Candidates carry their seed; the judge likes seed 2 best and seed 1 least, except for
    romance, where every candidate gets the same score (no clear pair)."""
    if is_judge(body):
        prompt = body["messages"][1]["content"]
        answer = prompt.split("THE ANSWER:\n", 1)[1]
        seed = answer.split("]", 1)[0].split("seed=", 1)[1] if "seed=" in answer else "none"
        score = 6 if "romance & comedy" in prompt else {"none": 5, "1": 3, "2": 9}[seed]
        return Reply(text=json.dumps({"score": score, "reason": f"seed {seed}"}))
    mark = f"[seed={body['seed']}] " if "seed" in body else ""
    return Reply(text=mark + default_text(body, 1100))


def sample(data: dict[str, Any]) -> Sample:
    request = GenerationRequest(
        messages=[
            ChatMessage(role="system", content="Be vivid."),
            ChatMessage(role="user", content="A plot."),
        ]
    )
    return Sample(
        record=Record(id="r1"),
        request=request,
        generation=GenerationOutcome(key="k", text="x"),
        text="x",
        data=data,
    )


PAIR = {"best": 2, "worst": 1, "chosen": "good", "rejected": "bad", "chosen_score": 9, "rejected_score": 3}


def test_a_preference_line_pairs_the_best_with_the_worst(line_validators) -> None:
    example = preference_line(sample({"best_of_n": PAIR}), PreferenceFormatSettings())
    assert example is not None and example.kind == "preference"
    assert example.line == {
        "input": {
            "messages": [{"role": "system", "content": "Be vivid."}, {"role": "user", "content": "A plot."}]
        },
        "preferred_output": [{"role": "assistant", "content": "good"}],
        "non_preferred_output": [{"role": "assistant", "content": "bad"}],
    }
    assert not list(line_validators["preference"].iter_errors(example.line))
    mine = preference_line(sample({"best_of_n": PAIR}), PreferenceFormatSettings(system_prompt="Short."))
    assert mine is not None and mine.line["input"]["messages"][0] == {"role": "system", "content": "Short."}
    assert len(mine.line["input"]["messages"]) == 2
    close = {**PAIR, "rejected_score": 8.5}
    assert preference_line(sample({"best_of_n": close}), PreferenceFormatSettings()) is None
    assert preference_line(sample({"best_of_n": close}), PreferenceFormatSettings(min_margin=0.5)) is not None


def test_without_best_of_n_the_format_says_what_is_missing() -> None:
    with pytest.raises(ConfigError, match='list \\[\\[filter\\]\\] plugin = "best-of-n"'):
        preference_line(sample({}), PreferenceFormatSettings())


@pytest.mark.usefixtures("encodings")
def test_a_run_writes_preference_lines_that_validate_and_export_for_trl(
    cli, workdir: Path, monkeypatch, line_validators
) -> None:
    preset = workdir / "prefs.toml"
    preset.write_text(PRESET)
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli("run", "--preset", str(preset), "--limit", "12", "--yes")
        assert result.exit_code == 0, result.output
        assert server.chat_count == 12 * (1 + 2 + 3)
        sent = server.chat_count
        assert cli("run", "--preset", str(preset), "--limit", "12", "--yes").exit_code == 0
        assert server.chat_count == sent  # a rerun sends nothing
    lines = read_jsonl(workdir / OUT / "train.jsonl")
    assert len(lines) == 10  # the two romance records' candidates tie: no pair
    for line in lines:
        assert not list(line_validators["preference"].iter_errors(line))
        assert line["preferred_output"][0]["content"].startswith("[seed=2] ")
        assert line["non_preferred_output"][0]["content"].startswith("[seed=1] ")
        assert "romance" not in line["input"]["messages"][-1]["content"]

    check = cli("validate", str(workdir / OUT / "train.jsonl"))
    assert check.exit_code == 0, check.output
    assert "10 preference examples" in check.output

    exported = cli("export", str(workdir / OUT / "train.jsonl"), "--format", "trl", "--out", "trl.jsonl")
    assert exported.exit_code == 0, exported.output
    rows = read_jsonl(workdir / "trl.jsonl")
    assert len(rows) == 10
    assert set(rows[0]) == {"prompt", "chosen", "rejected"}
    assert rows[0]["prompt"] == lines[0]["input"]["messages"]
    assert rows[0]["chosen"] == lines[0]["preferred_output"]


def test_the_trl_reader_takes_both_preference_shapes_and_names_a_bad_line(workdir: Path) -> None:
    from synthtune.plugins.trl.data import read_rows

    openai_line = {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "a"}],
        "non_preferred_output": [{"role": "assistant", "content": "b"}],
    }
    trl_line = {
        "prompt": [{"role": "user", "content": "q"}],
        "chosen": openai_line["preferred_output"],
        "rejected": openai_line["non_preferred_output"],
    }
    path = workdir / "p.jsonl"
    path.write_text(json.dumps(openai_line) + "\n" + json.dumps(trl_line) + "\n")
    kind, rows = read_rows(path)
    assert kind == "preference" and rows[0] == rows[1] == {
        "prompt": [{"role": "user", "content": "q"}],
        "chosen": [{"role": "assistant", "content": "a"}],
        "rejected": [{"role": "assistant", "content": "b"}],
    }
    path.write_text(json.dumps({**openai_line, "preferred_output": "a"}) + "\n")
    with pytest.raises(ConfigError, match="line 1: preference chosen must be a non-empty list"):
        read_rows(path)


def test_with_task_the_input_is_the_tasks_own_conversation(
    cli, workdir: Path, monkeypatch, line_validators
) -> None:
    preset = workdir / "prefs.toml"
    preset.write_text(
        PRESET.replace('plugin = "preference"', 'plugin = "preference"\ntask = "plot-generator"')
    )
    with FakeOpenAI(scripted) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = cli("run", "--preset", str(preset), "--limit", "6", "--yes")
        assert result.exit_code == 0, result.output
    lines = read_dataset(workdir / OUT)  # train and valid: the seeded splits decide which
    assert len(lines) == 6
    for line in lines:
        assert not list(line_validators["preference"].iter_errors(line))
        system, user = line["input"]["messages"]
        assert system["content"] == "You write complete, detailed plot outlines for films."
        assert (
            user["content"].startswith("Genre: ") and "\nPeriod: " in user["content"]
        )  # the task's user turn
        assert line["preferred_output"][0]["content"].startswith("[seed=2] ")


def test_bad_task_settings_are_refused_before_the_run(cli, workdir: Path) -> None:
    preset = workdir / "prefs.toml"
    bad = PRESET.replace(
        'plugin = "preference"',
        'plugin = "preference"\ntask = "plot-generator"\ntask_settings = {styl = "chat"}',
    )
    preset.write_text(bad)
    result = cli("run", "--preset", str(preset), "--limit", "2", "--yes")
    assert (
        result.exit_code == 2
        and "task_settings.styl: Extra inputs" in result.output
        and len(result.output.strip().splitlines()) == 1
    )
    preset.write_text(
        PRESET.replace('plugin = "preference"', 'plugin = "preference"\ntask = "no-such-plugin"')
    )
    result = cli("run", "--preset", str(preset), "--limit", "2", "--yes")
    assert result.exit_code == 2 and "no-such-plugin" in result.output
