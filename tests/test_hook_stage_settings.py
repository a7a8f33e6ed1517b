"""Hook `stage_settings`: the model a plugin declares validates its preset tables before any work."""

from __future__ import annotations

from pathlib import Path

from plugin_helpers import Probe, write_probe_preset
from pydantic import BaseModel, Field
from synthtune.core import hookimpl
from synthtune.core.plugins import NoSettings, PluginHost
from synthtune.core.settings import StageSettings


class FilterSettings(StageSettings):
    min_chars: int = Field(default=5, ge=0)


class Configured(Probe):
    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        return {"filter": FilterSettings, "generate": super().stage_settings(stage)}.get(stage)


def test_defaults_fill_in_and_keys_override(host: PluginHost, cli_for, workdir: Path) -> None:
    preset = write_probe_preset(workdir)
    with host.registered(Configured(), "probe"):
        shown = cli_for(host)("presets", "show", str(preset), "--set", "filter.0.min_chars=9")
        assert shown.exit_code == 0, shown.output
        assert "min_chars = 9" in shown.stdout
        assert host.settings_model("probe", "filter") is FilterSettings


def test_a_bad_key_names_the_file_the_stage_and_the_field(host: PluginHost, cli_for, workdir: Path) -> None:
    preset = write_probe_preset(workdir)
    with host.registered(Configured(), "probe"):
        result = cli_for(host)("run", "--preset", str(preset), "--set", "filter.0.min_chars=-1", "--yes")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {preset}: [[filter]] #0 min_chars: Input should be greater than")


def test_a_stage_without_a_model_rejects_every_key(host: PluginHost) -> None:
    class Bare:
        @hookimpl
        def filter(self, sample):
            return None

    with host.registered(Bare(), "bare"):
        assert host.settings_model("bare", "filter") is NoSettings
        assert NoSettings.model_validate({}) == NoSettings()
