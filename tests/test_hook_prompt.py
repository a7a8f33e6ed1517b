"""Hook `prompt`: zero or more requests per record; the core fills in the model and the key."""

from __future__ import annotations

from pathlib import Path

from plugin_helpers import Probe, write_probe_preset
from synthtune.core import ChatMessage, GenerationRequest, Record, hookimpl
from synthtune.core.plugins import PluginHost
from synthtune.core.testkit import run_preset


class TwoOrNone(Probe):
    @hookimpl
    def prompt(self, record: Record, context) -> list[GenerationRequest]:
        if record.id == "r1":
            return []
        return [
            GenerationRequest(
                messages=[ChatMessage(role="user", content=f"{record.id}:{context.seed}")], sample_index=i
            )
            for i in range(2)
        ]


def test_requests_per_record_model_and_key(host: PluginHost, workdir: Path) -> None:
    with host.registered(TwoOrNone(), "probe"):
        out = run_preset(write_probe_preset(workdir), host=host, workdir=workdir)
    assert out.report["records"] == 3 and out.report["requests"] == 4 and out.report["generated"] == 4
    assert [line["messages"][1]["content"] for line in out.train] == ["answer: r0:0"] * 2 + [
        "answer: r2:0"
    ] * 2
    assert out.report["model"] == "probe-model"
