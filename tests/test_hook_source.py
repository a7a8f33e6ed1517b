"""Hook `source`: records are pulled lazily; their ids tie reruns to earlier work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from plugin_helpers import Probe, write_probe_preset
from synthtune.core import Record, hookimpl
from synthtune.core.errors import GenerationError
from synthtune.core.plugins import PluginHost
from synthtune.core.testkit import run_preset


class Counting(Probe):
    pulled = 0

    @hookimpl
    def source(self, settings: Any, context: Any):
        for n in range(1000):
            self.pulled += 1
            yield Record(id=f"r{n}", category="even" if n % 2 == 0 else "odd", data={"text": f"record {n}"})


def test_records_are_pulled_lazily_and_counted_by_category(host: PluginHost, workdir: Path) -> None:
    plugin = Counting()
    with host.registered(plugin, "probe"):
        out = run_preset(write_probe_preset(workdir), host=host, limit=4, workdir=workdir)
    assert plugin.pulled <= 5  # a thousand-record source is not read past the limit
    assert out.report["records"] == 4 and out.report["categories"] == {"even": 2, "odd": 2}
    assert [line["messages"][0]["content"] for line in out.train] == [f"record {n}" for n in range(4)]


def test_yielding_something_else_than_a_record_is_an_error(host: PluginHost, workdir: Path) -> None:
    class Wrong(Probe):
        @hookimpl
        def source(self):
            yield {"id": "not a Record"}

    with (
        host.registered(Wrong(), "probe"),
        pytest.raises(GenerationError, match="yielded dict, not a Record"),
    ):
        run_preset(write_probe_preset(workdir), host=host, workdir=workdir)
