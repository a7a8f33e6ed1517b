"""`tune export`: openai/trl (as written), sharegpt and alpaca, from a run folder, run id or file."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import read_jsonl
from synthtune.core.testing import FakeOpenAI


def _run(cli, workdir: Path) -> list[dict]:
    result = cli("run", "--preset", "plot-generator", "--limit", "10", "--yes")
    assert result.exit_code == 0, result.output
    return read_jsonl(workdir / "runs" / "plot-generator" / "train.jsonl")


def test_exports_of_a_run(cli, fake_openai: FakeOpenAI, workdir: Path) -> None:
    lines = _run(cli, workdir)
    run_id = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())["run_id"]

    for fmt in ("openai", "trl"):
        result = cli("export", "runs/plot-generator", "--format", fmt, "--out", f"{fmt}.jsonl")
        assert result.exit_code == 0, result.output
        assert read_jsonl(workdir / f"{fmt}.jsonl") == lines
    from_store = cli("export", run_id, "--format", "openai")
    assert [json.loads(t) for t in from_store.stdout.splitlines()] == lines

    sharegpt = cli("export", "plot-generator", "--format", "sharegpt", "--out", "s.jsonl")
    assert sharegpt.exit_code == 0 and f"wrote {len(lines)} sharegpt examples" in sharegpt.stderr
    first, converted = lines[0]["messages"], read_jsonl(workdir / "s.jsonl")[0]
    assert converted == {
        "conversations": [
            {"from": "system", "value": first[0]["content"]},
            {"from": "human", "value": first[1]["content"]},
            {"from": "gpt", "value": first[2]["content"]},
        ]
    }

    alpaca = cli("export", "runs/plot-generator/train.jsonl", "--format", "alpaca")
    assert alpaca.exit_code == 0
    rows = [json.loads(t) for t in alpaca.stdout.splitlines()]
    assert len(rows) == len(lines)
    assert rows[0] == {
        "instruction": first[1]["content"],
        "input": "",
        "output": first[2]["content"],
        "system": first[0]["content"],
    }


def test_sharegpt_tools_alpaca_skips_and_trl_preference(cli, workdir: Path) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"q": "nile"}'}}
    chat = {
        "tools": [{"type": "function", "function": {"name": "search", "parameters": {}}}],
        "messages": [
            {"role": "user", "content": "Where?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "content": "Egypt"},
            {"role": "assistant", "content": "In Egypt."},
        ],
    }
    single = {"prompt": "Genre: x\n\nPLOT OUTLINE:", "completion": " A plot.\n\nEND"}
    (workdir / "mixed.jsonl").write_text(json.dumps(chat) + "\n" + json.dumps(single) + "\n")

    sharegpt = cli("export", "mixed.jsonl", "--format", "sharegpt")
    rows = [json.loads(t) for t in sharegpt.stdout.splitlines()]
    assert [t["from"] for t in rows[0]["conversations"]] == ["human", "function_call", "observation", "gpt"]
    assert json.loads(rows[0]["conversations"][1]["value"]) == {"name": "search", "arguments": {"q": "nile"}}
    assert json.loads(rows[0]["tools"]) == [{"name": "search", "parameters": {}}]
    assert rows[1]["conversations"] == [
        {"from": "human", "value": single["prompt"]},
        {"from": "gpt", "value": single["completion"]},
    ]

    alpaca = cli("export", "mixed.jsonl", "--format", "alpaca")
    assert alpaca.exit_code == 0
    assert [json.loads(t) for t in alpaca.stdout.splitlines()] == [
        {"instruction": single["prompt"], "input": "", "output": single["completion"]}
    ]
    assert "skipped 1 example(s): not a single-turn example" in alpaca.stderr

    preference = {
        "input": {"messages": [{"role": "user", "content": "Hi"}]},
        "preferred_output": [{"role": "assistant", "content": "Hello!"}],
        "non_preferred_output": [{"role": "assistant", "content": "Go away."}],
    }
    (workdir / "pref.jsonl").write_text(json.dumps(preference) + "\n")
    trl = cli("export", "pref.jsonl", "--format", "trl")
    assert json.loads(trl.stdout) == {
        "prompt": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello!"}],
        "rejected": [{"role": "assistant", "content": "Go away."}],
    }
    refused = cli("export", "pref.jsonl", "--format", "alpaca", "--out", "a.jsonl")
    assert refused.exit_code == 2 and "not preference ones" in refused.output
    assert not (workdir / "a.jsonl").exists() and not (workdir / "a.jsonl.tmp").exists()


def test_bad_targets_and_formats_are_one_line_errors(cli, workdir: Path) -> None:
    missing = cli("export", "nothing-here", "--format", "openai")
    assert missing.exit_code == 2 and "is not a JSONL file, a run folder or a run id" in missing.output
    (workdir / "x.jsonl").write_text("{}\n")
    bad = cli("export", "x.jsonl", "--format", "csv")
    assert bad.exit_code == 2 and "unknown export format 'csv'" in bad.output
