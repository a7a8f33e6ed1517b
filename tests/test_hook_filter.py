"""Hook `filter`: filters run in order, can clean the text, and the first drop wins."""

from __future__ import annotations

from pathlib import Path

from plugin_helpers import PROBE_PRESET, Probe
from synthtune.core import Verdict, hookimpl
from synthtune.core.plugins import PluginHost
from synthtune.core.testkit import run_preset


class Shout:
    @hookimpl
    def filter(self, sample):
        return Verdict.keep(text=sample.text.upper())


class DropRecordOne:
    seen: list[str]

    @hookimpl
    def filter(self, sample):
        self.seen.append(sample.text)
        return Verdict.drop("record one (not wanted)") if "RECORD 1" in sample.text else Verdict.keep()


def test_filters_chain_clean_and_drop(host: PluginHost, workdir: Path) -> None:
    preset = workdir / "chain.toml"
    preset.write_text(PROBE_PRESET + '[[filter]]\nplugin = "shout"\n[[filter]]\nplugin = "drop-one"\n')
    dropper = DropRecordOne()
    dropper.seen = []
    with (
        host.registered(Probe(), "probe"),
        host.registered(Shout(), "shout"),
        host.registered(dropper, "drop-one"),
    ):
        out = run_preset(preset, host=host, workdir=workdir)
    assert dropper.seen == ["ANSWER: RECORD 0", "ANSWER: RECORD 1", "ANSWER: RECORD 2"]
    assert [line["messages"][1]["content"] for line in out.train] == ["ANSWER: RECORD 0", "ANSWER: RECORD 2"]
    assert out.report["dropped"] == {"drop-one: record one": 1}
    assert "record one (not wanted)" in str(out.rejected[0])
