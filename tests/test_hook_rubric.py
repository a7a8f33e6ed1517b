"""Hook `rubric`: the task's rubric becomes the default of filters that take one (the judge)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from plugin_helpers import PROBE_PRESET, Probe
from synthtune.core import GenerationOutcome, GenerationRequest, hookimpl
from synthtune.core.errors import PluginError
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import load_preset

RUBRIC = "RUBRIC-7f3: a good answer names the record it answers."


class Graded(Probe):
    """A task with a rubric; its generate hook also plays the judge (9 when it saw the rubric)."""

    def __init__(self, rubric: object = RUBRIC) -> None:
        super().__init__()
        self.rubric_result = rubric
        self.judge_prompts: list[str] = []

    @hookimpl
    def rubric(self, settings):  # type: ignore[no-untyped-def]
        return self.rubric_result

    @hookimpl
    async def generate(self, requests: AsyncIterator[GenerationRequest]) -> AsyncIterator[GenerationOutcome]:
        async for request in requests:
            assert request.key is not None
            text = str(request.messages[-1].content)
            if request.step == "judge":
                self.judge_prompts.append(text)
                score = 9 if RUBRIC in text else 2
                yield GenerationOutcome(key=request.key, text=json.dumps({"score": score, "reason": "ok"}))
            else:
                yield GenerationOutcome(key=request.key, text=f"answer: {text}")


def preset(folder: Path) -> Path:
    path = folder / "graded.toml"
    path.write_text(
        PROBE_PRESET.replace('"probe"', '"graded"').replace(
            "[format]", '[[filter]]\nplugin = "judge"\n[format]'
        )
    )
    return path


def test_the_rubric_becomes_the_judges_default_and_reaches_its_requests(
    cli_for, workdir: Path, host: PluginHost
) -> None:
    plugin = Graded()
    with host.registered(plugin, "graded"):
        resolved = load_preset(str(preset(workdir)), host)
        assert resolved.filters[-1].settings.rubric == RUBRIC
        result = cli_for(host)("run", "--preset", str(preset(workdir)), "--yes")
    assert result.exit_code == 0, result.output
    assert len(plugin.judge_prompts) == 3 and all(RUBRIC in p for p in plugin.judge_prompts)
    report = json.loads((workdir / "runs" / "graded" / "report.json").read_text())
    assert report["kept"] == 3 and report["steps"]["judge"]["requests"] == 3


def test_a_preset_rubric_wins_and_none_leaves_the_generic_one(workdir: Path, host: PluginHost) -> None:
    with host.registered(Graded(), "graded"):
        mine = load_preset(str(preset(workdir)), host, ["filter.judge.rubric=Mine."])
        assert mine.filters[-1].settings.rubric == "Mine."
    with host.registered(Graded(rubric=None), "graded"):
        assert load_preset(str(preset(workdir)), host).filters[-1].settings.rubric is None


def test_a_rubric_that_is_not_text_is_a_plugin_error(workdir: Path, host: PluginHost) -> None:
    with host.registered(Graded(rubric=42), "graded"), pytest.raises(PluginError, match="not a str"):
        load_preset(str(preset(workdir)), host)
