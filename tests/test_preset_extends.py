"""Preset inheritance (extends, the merge rule, filter_append), --filter, and `tune presets show`
printing the resolved preset as TOML."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from synthtune.core.errors import ConfigError
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import available_presets, load_preset
from synthtune.core.testing import FakeOpenAI
from synthtune.core.toml_out import dumps

OUTLINE = "A long plot outline. " * 80  # over plot-generator's 1,000 characters

MY_PLOTS = """
extends = "plot-generator"
description = "Plot outlines, deduplicated"

[generate]
model = "gpt-4.1-nano"

[[filter_append]]
plugin = "dedupe"
threshold = 0.9
"""


def shown(cli, *args: str) -> dict[str, Any]:
    result = cli("presets", "show", *args)
    assert result.exit_code == 0, result.output
    return tomllib.loads(result.stdout)


def bundled(cli) -> dict[str, Any]:
    return json.loads(cli("presets", "show", "plot-generator", "--json").stdout)


def without_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_none(v) for v in value]
    return value


def test_a_preset_extending_a_bundled_one_merges_and_shows_as_toml(cli, workdir: Path) -> None:
    (workdir / "my-plots.toml").write_text(MY_PLOTS)
    parent = bundled(cli)
    result = cli("presets", "show", "my-plots.toml")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == "# my-plots.toml (extends presets/plot-generator.toml)"
    child = tomllib.loads(result.stdout)
    assert child["name"] == "my-plots"  # the name is never inherited: the file's
    assert child["description"] == "Plot outlines, deduplicated"
    assert child["seed"] == parent["seed"] and child["source"] == parent["source"]
    assert child["generate"] == {**without_none(parent["generate"]), "model": "gpt-4.1-nano"}  # key by key
    assert child["filter"][0] == parent["filter"][0]  # the parent's filter, then the appended one
    assert child["filter"][1]["plugin"] == "dedupe" and child["filter"][1]["threshold"] == 0.9
    assert len(child["filter"]) == 2


def test_a_preset_extending_a_bundled_one_runs(cli, workdir: Path, fake_openai: FakeOpenAI) -> None:
    (workdir / "my-plots.toml").write_text(MY_PLOTS)
    fake_openai.responder = lambda body: OUTLINE  # the same answer every time: duplicates
    result = cli("run", "--preset", "my-plots.toml", "--limit", "4", "--yes")
    assert result.exit_code == 0, result.output
    assert {request["model"] for request in fake_openai.chat_requests} == {"gpt-4.1-nano"}
    report = json.loads((workdir / "runs" / "my-plots" / "report.json").read_text())
    assert report["kept"] == 1 and report["dropped"] == {"dedupe: exact duplicate": 3}


def test_filter_appends_a_filter_with_default_settings_to_a_bundled_preset(
    cli, workdir: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.responder = lambda body: OUTLINE
    result = cli("run", "--preset", "plot-generator", "--limit", "3", "--yes", "--filter", "dedupe")
    assert result.exit_code == 0, result.output
    report = json.loads((workdir / "runs" / "plot-generator" / "report.json").read_text())
    assert report["kept"] == 1 and report["dropped"] == {"dedupe: exact duplicate": 2}


@pytest.mark.usefixtures("encodings")
def test_filter_is_repeatable_and_set_reaches_the_appended_filter(cli, workdir: Path) -> None:
    preset = shown(
        cli,
        "plot-generator",
        "--filter",
        "dedupe",
        "--filter",
        "writing-coach",
        "--set",
        "filter.dedupe.threshold=0.95",
    )
    assert [f["plugin"] for f in preset["filter"]] == ["plot-generator", "dedupe", "writing-coach"]
    assert preset["filter"][1]["threshold"] == 0.95
    assert (
        json.loads(
            cli(
                "estimate", "--preset", "plot-generator", "--filter", "dedupe", "--limit", "2", "--json"
            ).stdout
        )["records"]
        == 2
    )


def test_filter_wants_a_plugin_name(cli, workdir: Path) -> None:
    result = cli("presets", "show", "plot-generator", "--filter", "dedupe:threshold=0.9")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: --filter 'dedupe:threshold=0.9': expected a plugin name "
        "(set its settings with --set filter.PLUGIN.KEY=VALUE)"
    )


@pytest.mark.parametrize("unknown", ["nope", "./missing.toml"])
def test_an_unknown_parent_is_one_line(cli, workdir: Path, unknown: str) -> None:
    (workdir / "child.toml").write_text(f'extends = "{unknown}"\n')
    result = cli("presets", "show", "child.toml")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: child.toml: extends '{unknown}': ")
    if unknown == "nope":
        assert line.startswith("error: child.toml: extends 'nope': unknown preset (available: agent-chat, ")
    else:
        assert line == "error: child.toml: extends './missing.toml': preset file not found: missing.toml"


def test_a_cycle_is_one_line_naming_the_files(cli, workdir: Path) -> None:
    (workdir / "a.toml").write_text('extends = "b.toml"\n')
    (workdir / "b.toml").write_text('extends = "./a.toml"\n')
    result = cli("presets", "show", "a.toml")
    assert result.exit_code == 2
    # Paths relative to the folder of the file that names them, as typed: here the current one.
    assert result.stderr == "error: b.toml: extends './a.toml' makes a cycle: a.toml -> b.toml -> a.toml\n"


def test_a_preset_extending_itself_is_a_cycle(cli, workdir: Path) -> None:
    (workdir / "me.toml").write_text(f'extends = "{workdir / "me.toml"}"\n')
    result = cli("presets", "show", "me.toml")
    assert result.exit_code == 2
    assert (
        result.stderr
        == f"error: me.toml: extends '{workdir / 'me.toml'}' makes a cycle: me.toml -> {workdir / 'me.toml'}\n"
    )


def test_a_chain_of_three_with_relative_paths(host: PluginHost, workdir: Path) -> None:
    (workdir / "base").mkdir()
    (workdir / "base" / "middle.toml").write_text(
        'extends = "plot-generator"\nseed = 7\n[source]\ncount = 12\n[[filter]]\nplugin = "dedupe"\n'
    )
    (workdir / "top.toml").write_text(
        'extends = "base/middle.toml"\n[source]\ngenres = ["western"]\n[[filter_append]]\nplugin = "plot-generator"\n'
    )
    preset = load_preset(str(workdir / "top.toml"), host)
    assert preset.name == "top" and preset.seed == 7
    source: Any = preset.source.settings
    assert source.count == 12 and source.genres == ["western"] and len(source.places) == 9
    assert [f.plugin for f in preset.filters] == ["dedupe", "plot-generator"]  # replaced, then appended
    assert preset.parents == [str(workdir / "base" / "middle.toml"), "presets/plot-generator.toml"]


def test_another_plugin_for_a_stage_replaces_its_table(host: PluginHost, workdir: Path) -> None:
    (workdir / "q.toml").write_text(
        'extends = "question-generator"\n[source]\nplugin = "corpus"\ncount = 3\n'
        '[generate]\nplugin = "openai"\nmodel = "m"\n'
    )
    parent = load_preset("question-generator", host)
    preset = load_preset(str(workdir / "q.toml"), host)
    assert preset.source.settings.model_dump()["count"] == 3  # same plugin: merged
    assert preset.source.settings.model_dump()["path"] == parent.source.settings.model_dump()["path"]

    (workdir / "r.toml").write_text('extends = "writing-coach"\n[source]\nplugin = "corpus"\npath = "."\n')
    replaced = load_preset(str(workdir / "r.toml"), host)  # reddit's keys would be errors for corpus
    assert replaced.source.plugin == "corpus"


def test_a_user_preset_can_extend_the_bundled_preset_it_overrides(host: PluginHost, workdir: Path) -> None:
    folder = workdir / "user-presets"
    folder.mkdir()
    (folder / "plot-generator.toml").write_text(
        'name = "plot-generator"\nextends = "plot-generator"\n[generate]\nmodel = "gpt-4.1"\n'
    )
    assert available_presets(host)["plot-generator"].provider == "user"
    preset = load_preset("plot-generator", host)
    assert preset.model == "gpt-4.1" and preset.parents == ["presets/plot-generator.toml"]
    assert preset.source.plugin == "plot-generator"


def test_filter_append_must_be_tables(host: PluginHost, workdir: Path) -> None:
    (workdir / "bad.toml").write_text('extends = "plot-generator"\nfilter_append = ["dedupe"]\n')
    with pytest.raises(ConfigError, match=r"filter_append must be an array of tables"):
        load_preset(str(workdir / "bad.toml"), host)


@pytest.mark.parametrize(
    "name", ["plot-generator", "writing-coach", "question-generator", "agent-chat", "compassionate-chatbot"]
)
def test_the_shown_toml_is_a_preset_that_resolves_to_the_same_settings(
    cli, host: PluginHost, workdir: Path, name: str
) -> None:
    result = cli("presets", "show", name)
    assert result.exit_code == 0, result.output
    (workdir / "copy.toml").write_text(result.stdout)
    original = load_preset(name, host).as_dict()
    again = load_preset(str(workdir / "copy.toml"), host).as_dict()
    assert again == original


def test_toml_output_round_trips_awkward_values() -> None:
    data = {
        "name": "x",
        "description": 'quotes " and \\ backslashes, \x01 control, \x7f, tab\t, é',
        "ratio": 1e-05,
        "unset": None,
        "source": {"plugin": "p", "list": ["a", 'b"'], "nested": {"deep": {"rows": [{"a": 1}]}}, "n": None},
        "filter": [{"plugin": "a", "text": 'one\n"""\nthree\\\n'}, {"plugin": "b"}],
        "format": {"demarcator": "\n\nPLOT OUTLINE:", "empty": {}},
        "odd key": {"k.v": True},
    }
    assert tomllib.loads(dumps(data)) == without_none(data)
    assert "# unset: not set (its default)" in dumps(data)
