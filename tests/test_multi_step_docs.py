"""The worked example of docs/plugins.md "Multi-step tasks" runs as written: three steps per
record through the engine, and a rerun sends nothing."""

from __future__ import annotations

import json
import re
import types
from pathlib import Path
from typing import Any

from conftest import read_jsonl
from synthtune.core.plugins import PluginHost
from synthtune.core.testing import FakeOpenAI

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"

# The rest of the task, around the guide's format hook: three words, one request each, keep all.
REST = """
from synthtune.core import Record, Verdict


@hookimpl
def source(settings, context):
    for word in ("orbit", "tide", "recipe"):
        yield Record(id=word, data={"text": word})


@hookimpl
def prompt(record, settings, context):
    return [user(f"Explain the word '{record.data['text']}' simply.", 200)]


@hookimpl
def filter(sample, settings, context):
    return Verdict.keep()
"""

PRESET = """
name = "docs-task"
[source]
plugin = "docs-task"
[prompt]
plugin = "docs-task"
[generate]
plugin = "openai"
model = "gpt-4.1-mini"
[[filter]]
plugin = "docs-task"
[format]
plugin = "docs-task"
"""


def guide_example() -> str:
    section = GUIDE.read_text().split("## Multi-step tasks", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def step_of(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    return (
        "critique"
        if text.startswith("Here is an explanation")
        else "revise"
        if text.startswith("Rewrite")
        else "explain"
    )


def teacher(body: dict[str, Any]) -> str:
    return {"critique": "Too abstract.", "revise": "REVISED explanation.", "explain": "A first explanation."}[
        step_of(body)
    ]


def test_the_guides_critique_then_revise_example_runs(
    cli_for, host: PluginHost, workdir: Path, monkeypatch
) -> None:
    module = types.ModuleType("docs_task")
    exec(compile(guide_example() + REST, str(GUIDE), "exec"), module.__dict__)
    (workdir / "docs-task.toml").write_text(PRESET)
    with FakeOpenAI(teacher) as server, host.registered(module, "docs-task"):
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        cli = cli_for(host)
        result = cli("run", "--preset", "docs-task.toml", "--yes")
        assert result.exit_code == 0, result.output
        assert (
            sorted(step_of(b) for b in server.chat_requests)
            == ["critique"] * 3 + ["explain"] * 3 + ["revise"] * 3
        )
        report = json.loads((workdir / "runs" / "docs-task" / "report.json").read_text())
        assert report["steps"]["critique"]["requests"] == 3 and report["steps"]["revise"]["requests"] == 3
        lines = read_jsonl(workdir / "runs" / "docs-task" / "train.jsonl")
        assert [line["messages"][-1]["content"] for line in lines] == ["REVISED explanation."] * 3
        assert cli("run", "--preset", "docs-task.toml", "--yes").exit_code == 0
        assert server.chat_count == 9  # the rerun sent nothing
