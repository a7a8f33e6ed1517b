"""Name collisions are loud: plugin commands never replace core commands (or another plugin's),
two distributions registering one plugin name are both named and both listed, plugin presets
never replace bundled ones, and a plugin needing a newer synthtune is set aside with one line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import Cli
from plugin_helpers import Probe, install_distribution, tune, write_probe_preset
from pydantic import BaseModel
from synthtune.core import hookimpl
from synthtune.core.discovery import installed_version, satisfies, synthtune_specifier
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import available_presets, load_preset

# -- commands ---------------------------------------------------------------------------------


class Hijacker:
    @staticmethod
    @hookimpl
    def register_commands(cli):  # type: ignore[no-untyped-def]
        @cli.command("run")
        def run() -> None:
            print("hijacked run")

        @cli.command("fresh")
        def fresh() -> None:
            print("a new command")

        import typer

        cli.add_typer(typer.Typer(), name="presets")


class SecondComer:
    @staticmethod
    @hookimpl
    def register_commands(cli):  # type: ignore[no-untyped-def]
        @cli.command("fresh")
        def fresh() -> None:
            print("the second fresh")


def test_a_plugin_cannot_replace_a_core_command(host: PluginHost, cli_for, workdir: Path) -> None:
    with host.registered(Hijacker(), "hijacker"):
        cli = cli_for(host)
        run_help = cli("run", "--help")
        fresh = cli("fresh")
        presets = cli("presets", "list")
    assert run_help.exit_code == 0 and "--preset" in run_help.stdout  # the core's run
    assert "hijacked" not in run_help.stdout
    assert fresh.exit_code == 0 and fresh.stdout == "a new command\n"  # its other commands work
    assert presets.exit_code == 0 and "plot-generator" in presets.stdout
    warnings = [line for line in run_help.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: plugin 'hijacker' command 'run' was not added: "
        "it is a core command of tune (the core command stays)",
        "warning: plugin 'hijacker' command 'presets' was not added: "
        "it is a core command of tune (the core command stays)",
    ]


def test_the_first_plugin_keeps_a_command_name(host: PluginHost, cli_for, workdir: Path) -> None:
    with host.registered(Hijacker(), "hijacker"), host.registered(SecondComer(), "second"):
        cli = cli_for(host)
        result = cli("fresh")
        order = [name for name, _ in host.each("register_commands") if name in ("hijacker", "second")]
    first, second = order
    expected = "a new command\n" if first == "hijacker" else "the second fresh\n"
    assert result.stdout == expected
    assert (
        f"warning: plugin {second!r} command 'fresh' was not added: "
        f"plugin {first!r} already added a command of that name"
    ) in result.stderr.splitlines()


# -- two distributions, one plugin name ---------------------------------------------------------

CLASH = """
from synthtune.core import hookimpl

WHO = {who!r}


@hookimpl
def stage_settings(stage):
    return None
"""


@pytest.fixture
def two_distributions(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    folder = tmp_path / "site"
    install_distribution(
        monkeypatch, folder, "synthtune-zeta-tools", "2.0", {"clash": CLASH.format(who="zeta")}
    )
    install_distribution(
        monkeypatch, folder, "synthtune-alpha-tools", "1.0", {"clash": CLASH.format(who="alpha")}
    )
    return folder


def test_two_distributions_with_one_plugin_name_are_both_named(
    two_distributions: Path, workdir: Path
) -> None:
    host = PluginHost()
    host.load_entrypoints()
    assert host.plugin("clash").WHO == "alpha"  # the first by distribution name
    assert host.warnings == [
        "plugin name 'clash' is registered by 2 distributions: synthtune-alpha-tools 1.0 (loaded), "
        "synthtune-zeta-tools 2.0 (ignored); uninstall one, or choose with "
        "SYNTHTUNE_DISABLE_PLUGINS=synthtune-zeta-tools"
    ]
    listed = Cli(host)("plugins", "list")
    assert listed.exit_code == 0
    lines = [line for line in listed.stdout.splitlines() if line.startswith("clash ")]
    assert lines == [
        "clash (synthtune-alpha-tools 1.0): stage_settings",
        "clash (synthtune-zeta-tools 2.0): ignored: plugin name taken by synthtune-alpha-tools 1.0",
    ]
    assert listed.stderr.count("warning: plugin name 'clash'") == 1
    as_json = [p for p in json.loads(Cli(host)("plugins", "list", "--json").stdout) if p["name"] == "clash"]
    assert [(p["distribution"], p["status"]) for p in as_json] == [
        ("synthtune-alpha-tools", "loaded"),
        ("synthtune-zeta-tools", "ignored"),
    ]


def test_the_user_chooses_a_distribution_by_disabling_the_other(
    two_distributions: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTHTUNE_DISABLE_PLUGINS", "broken-example,synthtune-alpha-tools")
    host = PluginHost()
    host.load_entrypoints()
    assert host.plugin("clash").WHO == "zeta"
    assert host.warnings == [] and host.shadowed == []


def test_a_third_party_plugin_cannot_take_a_bundled_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path
) -> None:
    install_distribution(
        monkeypatch, tmp_path / "site", "synthtune-openai-fork", "0.1", {"openai": CLASH.format(who="fork")}
    )
    host = PluginHost()
    host.load_entrypoints()
    assert host.plugin("openai").__name__ == "synthtune.plugins.openai"  # type: ignore[attr-defined]
    assert host.warnings == [
        "plugin name 'openai' is registered by 2 distributions: synthtune "
        f"{installed_version()} (loaded), synthtune-openai-fork 0.1 (ignored); rename one of them"
    ]


def test_the_installed_cli_shows_both_distributions(two_distributions: Path, workdir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNTHTUNE_TRACEBACK")}
    env["PYTHONPATH"] = str(two_distributions)
    result = tune("plugins", "list", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "clash (synthtune-alpha-tools 1.0): stage_settings" in result.stdout
    assert "clash (synthtune-zeta-tools 2.0): ignored" in result.stdout
    assert result.stderr.splitlines() == [
        "warning: plugin name 'clash' is registered by 2 distributions: synthtune-alpha-tools 1.0 (loaded), "
        "synthtune-zeta-tools 2.0 (ignored); uninstall one, or choose with "
        "SYNTHTUNE_DISABLE_PLUGINS=synthtune-zeta-tools"
    ]


# -- the synthtune a plugin needs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("requires", "loads"),
    [
        (("synthtune>=0.1",), True),
        (("synthtune>=99",), False),
        (("synthtune<0.1",), False),
        (('synthtune>=99; extra == "test"', "pydantic>=2"), True),  # only for its tests
        ((), True),
    ],
)
def test_a_plugin_declares_the_synthtune_it_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path, requires: tuple[str, ...], loads: bool
) -> None:
    install_distribution(
        monkeypatch,
        tmp_path / "site",
        "synthtune-needy",
        "1.0",
        {"needy": CLASH.format(who="needy")},
        requires,
    )
    host = PluginHost()
    host.load_entrypoints()
    assert ("needy" in host.names()) is loads
    if not loads:
        current = installed_version()
        wanted = requires[0].removeprefix("synthtune")
        assert host.warnings == [
            f"plugin 'needy' was not loaded: synthtune-needy 1.0 needs synthtune{wanted}, and synthtune "
            f"{current} is installed: upgrade synthtune (pip install -U synthtune) or install a "
            f"synthtune-needy made for synthtune {current}"
        ]
        with pytest.raises(Exception, match=r"plugin 'needy' is not loaded: synthtune-needy 1.0 needs"):
            host.plugin("needy")
    else:
        assert host.warnings == []


# -- presets and settings ----------------------------------------------------------------------


def test_a_plugin_preset_cannot_replace_a_bundled_one(host: PluginHost, workdir: Path) -> None:
    class Impostor:
        @hookimpl
        def register_presets(self, register):  # type: ignore[no-untyped-def]
            register('name = "plot-generator"\ndescription = "impostor"', origin="impostor.toml")

    with host.registered(Impostor(), "impostor"):
        presets = available_presets(host)
    assert presets["plot-generator"].provider == "bundled"
    assert host.warnings == [
        "preset 'plot-generator' from plugin 'impostor' ignored: already provided by "
        "presets/plot-generator.toml (a bundled preset: give yours another name; it can extend that one)"
    ]


def test_a_settings_field_named_plugin_is_warned_about(host: PluginHost, workdir: Path) -> None:
    class Settings(BaseModel):
        plugin: str = "never set"

    class Clashing(Probe):
        @hookimpl
        def stage_settings(self, stage):  # type: ignore[no-untyped-def]
            return Settings if stage == "filter" else super().stage_settings(stage)

    with host.registered(Clashing(), "probe"):
        load_preset(str(write_probe_preset(workdir)), host)
    assert host.warnings == [
        "plugin 'probe' settings model Settings for 'filter' has a field 'plugin', which presets use "
        "to name the plugin: it never gets a preset's value; rename it"
    ]


@pytest.mark.parametrize(
    ("version", "specifier", "met"),
    [
        ("0.1.0", ">=0.1", True),
        ("0.1.0", ">=0.2", False),
        ("0.2.0", ">=0.2,<1", True),
        ("1.0", ">=0.2,<1", False),
        ("0.2.5", "~=0.2", True),
        ("1.0", "~=0.2", False),
        ("0.2.5", "~=0.2.3", True),
        ("0.3.0", "~=0.2.3", False),
        ("0.2.1", "==0.2.*", True),
        ("0.3", "==0.2.*", False),
        ("0.2", "==0.2.0", True),
        ("0.2", "!=0.2", False),
        ("0.2.0.dev1", ">=0.2", True),  # a pre-release counts as its release
        ("0.1.1", ">0.1", True),
        ("0.1", "===0.1+local", True),  # unreadable clauses are not held against the plugin
    ],
)
def test_version_specifiers(version: str, specifier: str, met: bool) -> None:
    assert satisfies(version, specifier) is met


@pytest.mark.parametrize(
    ("line", "specifier"),
    [
        ("synthtune>=0.1.0", ">=0.1.0"),
        ("synthtune (>=0.1)", ">=0.1"),
        ("Synthtune[local] >= 0.2 , <1", ">=0.2,<1"),
        ('synthtune>=9; extra == "test"', None),
        ('synthtune>=0.2; python_version >= "3.11"', ">=0.2"),
        ("synthtune-haiku>=1", None),
        ("synthtune", None),
        ("pydantic>=2", None),
    ],
)
def test_the_synthtune_requirement_is_read_from_requires_dist(line: str, specifier: str | None) -> None:
    assert synthtune_specifier(line) == specifier
