"""Preset discovery (bundled, plugin, user folder, path), overrides and resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthtune.core import hookimpl
from synthtune.core.errors import ConfigError
from synthtune.core.presets import available_presets, load_preset, parse_override
from synthtune.core.settings import GenerateSettings
from synthtune.plugins.plot_generator import PlotFilterSettings

USER_PRESET = """
name = "my-plots"
description = "Mine"
[source]
plugin = "plot-generator"
genres = ["western"]
[prompt]
plugin = "plot-generator"
[generate]
plugin = "openai"
[format]
plugin = "plot-generator"
"""


def test_presets_list_shows_bundled_with_descriptions(cli) -> None:
    result = cli("presets", "list")
    assert result.exit_code == 0
    line = next(line for line in result.stdout.splitlines() if line.startswith("plot-generator"))
    assert "Detailed film plot outlines" in line and "[bundled]" in line


def test_presets_show_fills_in_defaults(cli) -> None:
    result = cli("presets", "show", "plot-generator", "--set", "generate.model=gpt-4.1", "--json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["generate"]["model"] == "gpt-4.1"
    assert shown["generate"]["concurrency"] == 16
    assert shown["filter"] == [{"plugin": "plot-generator", "min_chars": 1000, "drop_truncated": True}]
    assert len(shown["source"]["places"]) == 9


def test_user_folder_preset_and_path_preset(workdir: Path, host) -> None:
    folder = workdir / "user-presets"
    folder.mkdir()
    (folder / "mine.toml").write_text(USER_PRESET)
    presets = available_presets(host)
    assert presets["my-plots"].provider == "user"
    preset = load_preset("my-plots", host)
    assert preset.source.settings.genres == ["western"]  # type: ignore[attr-defined]
    assert isinstance(preset.generate.settings, GenerateSettings)
    by_path = load_preset(str(folder / "mine.toml"), host)
    assert by_path.name == "my-plots" and by_path.origin.endswith("mine.toml")


def test_plugin_presets_are_registered_through_the_hook(workdir: Path, host) -> None:
    class Shipper:
        @hookimpl
        def register_presets(self, register) -> None:  # type: ignore[no-untyped-def]
            register(USER_PRESET.replace("my-plots", "shipped"), origin="shipper.toml")

    host.register(Shipper(), "shipper")
    assert available_presets(host)["shipped"].provider == "shipper"
    assert load_preset("shipped", host).description == "Mine"


@pytest.mark.parametrize(
    ("assignment", "path", "value"),
    [
        ("generate.model=gpt-4.1", ["generate", "model"], "gpt-4.1"),
        ("generate.concurrency=8", ["generate", "concurrency"], 8),
        ("filter.0.min_chars=800", ["filter", "0", "min_chars"], 800),
        ('source.genres=["a", "b"]', ["source", "genres"], ["a", "b"]),
        ("seed=3", ["seed"], 3),
        ("output.valid_fraction=0.1", ["output", "valid_fraction"], 0.1),
    ],
)
def test_parse_override(assignment: str, path: list[str], value: object) -> None:
    assert parse_override(assignment) == (path, value)


def test_overrides_are_type_checked_and_reach_the_settings(host) -> None:
    preset = load_preset(
        "plot-generator", host, ["filter.plot-generator.min_chars=800", "seed=3", "generate.concurrency=2"]
    )
    assert isinstance(preset.filters[0].settings, PlotFilterSettings)
    assert preset.filters[0].settings.min_chars == 800
    assert preset.seed == 3
    with pytest.raises(ConfigError, match=r"\[\[filter\]\] #0 min_chars"):
        load_preset("plot-generator", host, ["filter.0.min_chars=lots"])
    with pytest.raises(ConfigError, match="unknown section 'generat'"):
        load_preset("plot-generator", host, ["generat.model=x"])
    with pytest.raises(ConfigError, match="no filter 'nope'"):
        load_preset("plot-generator", host, ["filter.nope.min_chars=1"])
