"""Plugins are imported when needed: discovery reads entry points only, `tune run` imports the
plugins its preset names, listings import them all; a preset is found by name in the files
before any plugin is asked for its presets; `tune CMD` builds only that core command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from plugin_helpers import add_entry_points
from synthtune.core import hookimpl
from synthtune.core import plugins as plugins_module
from synthtune.core.cli import CORE_COMMANDS, main
from synthtune.core.errors import ConfigError
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import available_presets, find_preset, load_preset

IMPORT_RAISES = "raise RuntimeError('cannot start: missing GPU driver')\n"
WITH_PRESET = """
from synthtune.core import hookimpl

IMPORTED = True


@hookimpl
def register_presets(register):
    register('name = "from-plugin"\\ndescription = "a plugin preset"', origin="from-plugin.toml")
"""


def test_discovery_imports_nothing_and_a_plugin_is_imported_when_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path
) -> None:
    add_entry_points(monkeypatch, tmp_path / "fake", {"bad": IMPORT_RAISES, "lister": WITH_PRESET})
    host = PluginHost()
    host.discover()
    assert {"bad", "lister", "openai", "plot-generator"} <= set(host.pending)
    assert host.pm.get_plugins() == set() and host.warnings == []
    assert "fake_plugin_bad" not in sys.modules and "fake_plugin_lister" not in sys.modules
    assert host.stage("plot-generator", "source").plugin == "plot-generator"  # imported on demand
    assert [name for name, _ in host.pm.list_name_plugin()] == ["plot-generator"]
    with pytest.raises(ConfigError, match="plugin 'bad' is not loaded: failed to import: RuntimeError"):
        host.plugin("bad")
    assert host.warnings == ["plugin 'bad' failed to import: RuntimeError: cannot start: missing GPU driver"]
    assert "lister" in host.pending  # still not imported
    assert "lister" in host.names() and not host.pending  # a listing imports every plugin


def test_allow_list_is_applied_without_importing(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.setenv("SYNTHTUNE_LOAD_PLUGINS", "openai")
    host = PluginHost()
    host.discover()
    assert list(host.pending) == ["openai"] and host.pm.get_plugins() == set()
    assert host.skipped["plot-generator"] == "not listed in SYNTHTUNE_LOAD_PLUGINS"
    with pytest.raises(ConfigError, match="'plot-generator' is not loaded: not listed in SYNTHTUNE_LOAD"):
        load_preset("plot-generator", host)


def test_a_bundled_preset_is_found_without_importing_any_plugin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path
) -> None:
    add_entry_points(monkeypatch, tmp_path / "fake", {"lister": WITH_PRESET})
    host = PluginHost()
    host.discover()
    assert find_preset("plot-generator", host).provider == "bundled"
    assert host.pm.get_plugins() == set()
    preset = load_preset("plot-generator", host)  # resolving imports the plugins it names
    assert {name for name, _ in host.pm.list_name_plugin()} == {"plot-generator", "openai"}
    assert preset.source.plugin == "plot-generator" and "fake_plugin_lister" not in sys.modules


def test_the_user_folder_still_wins_and_plugin_presets_are_still_found(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path
) -> None:
    add_entry_points(monkeypatch, tmp_path / "fake", {"lister": WITH_PRESET})
    user = workdir / "user-presets"
    user.mkdir()
    (user / "mine.toml").write_text('name = "plot-generator"\ndescription = "my own"\n')
    host = PluginHost()
    host.discover()
    found = find_preset("plot-generator", host)
    assert (found.provider, found.origin) == ("user", str(user / "mine.toml"))
    assert host.pm.get_plugins() == set()
    assert available_presets(host)["plot-generator"] == found  # the same as the full list says
    fresh = PluginHost()
    fresh.discover()
    assert find_preset("from-plugin", fresh).provider == "lister"  # not a file: plugins are asked
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        find_preset("nope", fresh)


def test_a_clash_is_reported_when_the_name_is_imported(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path
) -> None:
    from plugin_helpers import install_distribution

    clash = "from synthtune.core import hookimpl\nWHO = {who!r}\n"
    folder = tmp_path / "site"
    install_distribution(monkeypatch, folder, "synthtune-zeta-tools", "2.0", {"clash": clash.format(who="z")})
    install_distribution(
        monkeypatch, folder, "synthtune-alpha-tools", "1.0", {"clash": clash.format(who="a")}
    )
    host = PluginHost()
    host.discover()
    assert host.warnings == []
    assert host.plugin("clash").WHO == "a"  # type: ignore[attr-defined]
    assert host.warnings == [
        "plugin name 'clash' is registered by 2 distributions: synthtune-alpha-tools 1.0 (loaded), "
        "synthtune-zeta-tools 2.0 (ignored); uninstall one, or choose with "
        "SYNTHTUNE_DISABLE_PLUGINS=synthtune-zeta-tools"
    ]


def test_tune_run_builds_one_command_and_imports_only_the_presets_plugins(workdir: Path) -> None:
    probe = (
        "import json, sys\n"
        "from synthtune.core.cli import build_app\n"
        "from synthtune.core.plugins import get_host\n"
        "from synthtune.core.presets import load_preset\n"
        "import typer.main\n"
        "command = typer.main.get_command(build_app(only='run'))\n"
        "load_preset('plot-generator', get_host())\n"
        "print(json.dumps({'commands': sorted(command.commands),\n"
        "    'plugins': sorted(m for m in sys.modules if m.startswith('synthtune.plugins.') and m.count('.') == 2),\n"
        "    'others': sorted(m for m in sys.modules if m.startswith(('synthtune_', 'rich')))}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    found = json.loads(result.stdout)
    assert found["commands"] == ["run"]
    assert found["plugins"] == ["synthtune.plugins.openai", "synthtune.plugins.plot_generator"]
    assert found["others"] == []  # no third-party plugin (haiku, broken-example), no rich
    assert result.stderr == ""


class Greeter:
    calls = 0

    @hookimpl
    def register_commands(self, cli: typer.Typer) -> None:
        Greeter.calls += 1

        @cli.command("hello")
        def hello() -> None:
            print("hello from a plugin")


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["tune", *args])
    with pytest.raises(SystemExit) as stopped:
        main()
    return int(stopped.value.code or 0)


def test_main_builds_the_command_it_runs_and_help_lists_every_command(
    monkeypatch: pytest.MonkeyPatch, host: PluginHost, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with host.registered(Greeter(), "greeter"):
        monkeypatch.setattr(plugins_module, "_host", host)
        Greeter.calls = 0
        assert _main(monkeypatch, "presets", "list") == 0
        assert Greeter.calls == 0 and "plot-generator" in capsys.readouterr().out
        assert _main(monkeypatch, "hello") == 0  # a plugin's command: every command is built
        assert Greeter.calls == 1 and capsys.readouterr().out == "hello from a plugin\n"
        assert _main(monkeypatch, "--help") == 0
        listed = capsys.readouterr().out
    commands = listed[listed.index("Commands:") :].splitlines()[1:]
    assert sorted(line.split()[0] for line in commands if line.strip()) == sorted(
        [*CORE_COMMANDS, "hello", "merge-adapter"]
    )  # the transformers plugin's
