"""Hook `register_presets`: plugins contribute presets by path or text; the core owns clashes."""

from __future__ import annotations

from pathlib import Path

from plugin_helpers import PROBE_PRESET, Probe
from synthtune.core import hookimpl
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import available_presets, load_preset


class Shipping(Probe):
    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    @hookimpl
    def register_presets(self, register):
        path = self.folder / "from-file.toml"
        path.write_text(PROBE_PRESET.replace('name = "probe"', 'name = "from-file"'))
        register(path)
        register(PROBE_PRESET.replace('name = "probe"', 'name = "from-text"'), origin="inline")


def test_presets_by_path_and_by_text_are_listed_and_load(host: PluginHost, cli_for, workdir: Path) -> None:
    with host.registered(Shipping(workdir), "probe"):
        listed = cli_for(host)("presets", "list")
        assert listed.exit_code == 0
        assert [line.split()[-1] for line in listed.stdout.splitlines() if line.startswith("from-")] == [
            "[probe]",
            "[probe]",
        ]
        assert load_preset("from-text", host).source.plugin == "probe"
        assert load_preset("from-file", host).origin == f"{workdir / 'from-file.toml'} (plugin probe)"


def test_a_name_clash_warns_and_the_first_plugin_wins(host: PluginHost, workdir: Path) -> None:
    class Second:
        @hookimpl
        def register_presets(self, register):
            register('name = "from-text"\ndescription = "impostor"', origin="second")

    with host.registered(Shipping(workdir), "probe"), host.registered(Second(), "second"):
        presets = available_presets(host)
    winner = presets["from-text"].provider
    loser = {"probe", "second"} - {winner}
    assert [line for line in host.warnings if "from-text" in line] == [
        f"preset 'from-text' from plugin {loser.pop()!r} ignored: already provided by "
        + ("inline (plugin probe)" if winner == "probe" else "second (plugin second)")
    ]


def test_a_failing_register_presets_is_one_warning(host: PluginHost, cli_for, workdir: Path) -> None:
    class Broken:
        @hookimpl
        def register_presets(self, register):
            register(workdir / "missing.toml")

    with host.registered(Broken(), "broken"):
        result = cli_for(host)("presets", "list")
    assert result.exit_code == 0 and "plot-generator" in result.stdout
    [warning] = result.stderr.splitlines()
    assert warning.startswith("warning: plugin 'broken' failed in register_presets: FileNotFoundError")
