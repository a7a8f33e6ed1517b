"""Hook `preflight`: a plugin says, before a run spends or writes anything, whether it can serve."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import Probe, write_probe_preset
from synthtune.core import hookimpl
from synthtune.core.errors import ConfigError
from synthtune.core.plugins import PluginHost


class Checked(Probe):
    """A probe whose preflight fails (with ``problem``) or passes, and notes what it was asked."""

    def __init__(self, problem: str | None = None) -> None:
        super().__init__()
        self.problem = problem
        self.asked: list[tuple[str, str]] = []

    @hookimpl
    def preflight(self, stage: str, settings):  # type: ignore[no-untyped-def]
        self.asked.append((stage, type(settings).__name__))
        if self.problem:
            raise ConfigError(self.problem)


def test_a_failing_preflight_stops_the_run_before_anything_is_written(
    cli_for, workdir: Path, host: PluginHost
) -> None:
    plugin = Checked("PROBE_KEY is not set: export it")
    preset = write_probe_preset(workdir)
    with host.registered(plugin, "probe"):
        result = cli_for(host)("run", "--preset", str(preset), "--yes")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: PROBE_KEY is not set: export it"
    assert plugin.asked == [("generate", "ProbeGenerateSettings")]  # once, with its settings
    assert "source" not in plugin.calls  # no stage ran
    assert sorted(p.name for p in workdir.iterdir()) == ["probe.toml"]  # no store, no runs/


def test_a_passing_preflight_lets_the_run_go_on(cli_for, workdir: Path, host: PluginHost) -> None:
    plugin = Checked()
    preset = write_probe_preset(workdir)
    with host.registered(plugin, "probe"):
        result = cli_for(host)("run", "--preset", str(preset), "--yes")
    assert result.exit_code == 0, result.output
    assert plugin.asked == [("generate", "ProbeGenerateSettings")]
    assert (workdir / "runs" / "probe" / "train.jsonl").is_file()


def test_a_plugin_without_the_hook_is_assumed_ready(cli_for, workdir: Path, host: PluginHost) -> None:
    preset = write_probe_preset(workdir)
    with host.registered(Probe(), "probe"):
        result = cli_for(host)("run", "--preset", str(preset), "--yes")
    assert result.exit_code == 0, result.output


def test_a_failing_generate_check_is_not_needed_when_everything_is_answered(
    cli_for, workdir: Path, host: PluginHost, caplog: pytest.LogCaptureFixture
) -> None:
    preset = write_probe_preset(workdir)
    with host.registered(Checked(), "probe"):
        assert cli_for(host)("run", "--preset", str(preset), "--yes").exit_code == 0
    plugin = Checked("the probe server is down")
    with host.registered(plugin, "probe"):
        again = cli_for(host)("run", "--preset", str(preset), "--yes")
    assert again.exit_code == 0, again.output
    assert "generate" not in plugin.calls  # the backend was never needed
    assert "the probe server is down (not needed" in caplog.text  # said, but not in the way
