"""Hook `format`: zero or more training lines per kept sample, in any OpenAI fine-tuning format."""

from __future__ import annotations

from pathlib import Path

from plugin_helpers import Probe, write_probe_preset
from synthtune.core import TrainingExample, hookimpl
from synthtune.core.plugins import PluginHost
from synthtune.core.testkit import run_preset


class Completions(Probe):
    @hookimpl
    def format(self, sample):
        if sample.record.id == "r0":
            return []
        return [
            TrainingExample.completion(prompt=sample.record.data["text"], completion=f" {sample.text}")
        ] * 2


def test_examples_per_sample_in_completion_format(host: PluginHost, workdir: Path) -> None:
    with host.registered(Completions(), "probe"):
        out = run_preset(write_probe_preset(workdir), host=host, workdir=workdir)
    assert (
        out.train
        == [{"prompt": "record 1", "completion": " answer: record 1"}] * 2
        + [{"prompt": "record 2", "completion": " answer: record 2"}] * 2
    )
    assert out.line_errors() == []
    assert out.report["examples"] == {"train": 4}
