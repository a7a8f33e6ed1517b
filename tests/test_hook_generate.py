"""Hook `generate`: a backend answers only requests not already in the run store."""

from __future__ import annotations

from pathlib import Path

from plugin_helpers import Probe, write_probe_preset
from synthtune.core import GenerationOutcome, hookimpl
from synthtune.core.plugins import PluginHost
from synthtune.core.testkit import run_preset


class Backend(Probe):
    asked: list[str]

    @hookimpl
    async def generate(self, requests, settings):
        async for request in requests:
            self.asked.append(request.messages[-1].content)
            if request.messages[-1].content == "record 1":
                yield GenerationOutcome(key=request.key, error="HTTP 500: try later")
            else:
                yield GenerationOutcome(
                    key=request.key, text=f"{settings.model} says hi", finish_reason="stop"
                )


def test_outcomes_are_stored_and_a_rerun_asks_only_for_failures(host: PluginHost, workdir: Path) -> None:
    backend = Backend()
    backend.asked = []
    with host.registered(backend, "probe"):
        first = run_preset(write_probe_preset(workdir), host=host, workdir=workdir)
        assert backend.asked == ["record 0", "record 1", "record 2"]
        assert first.report["generated"] == 2 and first.report["failed"] == 1
        assert first.train[0]["messages"][1]["content"] == "probe-model says hi"
        again = run_preset(write_probe_preset(workdir), host=host, workdir=workdir)
    assert backend.asked[3:] == ["record 1"]  # the two answers already stored are not asked again
    assert again.report["cached"] == 2
