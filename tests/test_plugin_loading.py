"""Robust loading: no plugin can break the CLI; failures are one line naming the plugin (and the
stage at run time); allow- and block-lists; --traceback shows the original error."""

from __future__ import annotations

from pathlib import Path

import pytest
from plugin_helpers import Probe, add_entry_points, write_probe_preset
from synthtune.core import hookimpl
from synthtune.core.errors import ConfigError, PluginError
from synthtune.core.plugins import PluginHost

GOOD = """
from synthtune.core import hookimpl

@hookimpl
def stage_settings(stage):
    return None
"""
IMPORT_RAISES = "raise RuntimeError('cannot start: missing GPU driver')\n"
EXITS = "import sys\nsys.exit(3)\n"
WRONG_SIGNATURE = """
from synthtune.core import hookimpl

@hookimpl
def source(settngs, context):
    return []
"""
UNKNOWN_HOOK = """
from synthtune.core import hookimpl

@hookimpl
def sorce(settings, context):
    return []
"""


def loaded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, modules: dict[str, str]) -> PluginHost:
    add_entry_points(monkeypatch, tmp_path / "fake_plugins", modules)
    host = PluginHost()
    host.load_entrypoints()
    return host


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (IMPORT_RAISES, "plugin 'bad' failed to import: RuntimeError: cannot start: missing GPU driver"),
        (EXITS, "plugin 'bad' failed to import: SystemExit: 3"),
        (
            WRONG_SIGNATURE,
            "plugin 'bad' was not registered: PluginValidationError: Plugin 'bad' for hook 'source'",
        ),
        (
            UNKNOWN_HOOK,
            "plugin 'bad' was not registered: ValueError: unknown hook(s) sorce (known: stage_settings",
        ),
    ],
    ids=["import-raises", "import-exits", "wrong-signature", "unknown-hook"],
)
def test_a_broken_plugin_is_one_warning_line_and_the_rest_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path, source: str, expected: str
) -> None:
    host = loaded(monkeypatch, tmp_path, {"bad": source, "good": GOOD})
    assert len(host.warnings) == 1
    assert host.warnings[0].startswith(expected)
    assert "\n" not in host.warnings[0]
    assert "good" in host.names() and "plot-generator" in host.names() and "bad" not in host.names()


def test_the_cli_keeps_working_and_names_the_broken_plugin_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path, cli_for
) -> None:
    host = loaded(monkeypatch, tmp_path, {"bad": WRONG_SIGNATURE})
    cli = cli_for(host)
    listed = cli("plugins", "list")
    assert listed.exit_code == 0, listed.output
    assert "plot-generator (synthtune" in listed.stdout
    warnings = [line for line in listed.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "'bad'" in warnings[0] and "settngs" in warnings[0]
    assert cli("plugins", "list").stderr == ""  # one host reports each warning once
    fresh = PluginHost()
    fresh.load_entrypoints()
    presets = cli_for(fresh)("presets", "list")
    assert presets.exit_code == 0 and "plot-generator" in presets.stdout
    assert presets.stderr.count("warning: plugin 'bad'") == 1


def test_a_preset_naming_a_plugin_that_failed_to_load_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path, cli_for
) -> None:
    host = loaded(monkeypatch, tmp_path, {"probe": IMPORT_RAISES})
    result = cli_for(host)("run", "--preset", str(write_probe_preset(tmp_path)), "--yes")
    assert result.exit_code == 2
    assert (
        "[source] plugin 'probe' is not loaded: failed to import: RuntimeError: cannot start" in result.stderr
    )


@pytest.mark.parametrize("stage", ["source", "prompt", "generate", "filter", "format"])
def test_a_hook_raising_at_run_time_is_one_error_line_naming_plugin_and_stage(
    host: PluginHost, cli_for, workdir: Path, stage: str
) -> None:
    probe = Probe(fail_in=stage, message="disk full\nwhile writing /tmp/x")
    with host.registered(probe, "probe"):
        result = cli_for(host)("run", "--preset", str(write_probe_preset(workdir)), "--yes")
    assert result.exit_code == 1, result.output
    # Probe fails on its second call: for the stages that work on a record, that is record r1.
    where = " on record 'r1'" if stage in ("prompt", "filter", "format") else ""
    assert (
        result.stderr
        == f"error: plugin 'probe' failed in stage '{stage}'{where}: disk full while writing /tmp/x\n"
    )


def test_traceback_switch_shows_the_original_error(host: PluginHost, cli_for, workdir: Path) -> None:
    with host.registered(Probe(fail_in="source", message="the original"), "probe"):
        result = cli_for(host)("--traceback", "run", "--preset", str(write_probe_preset(workdir)), "--yes")
    assert isinstance(result.exception, PluginError)
    assert isinstance(result.exception.original, ValueError)
    assert str(result.exception.__cause__) == "the original"


def test_traceback_env_adds_the_traceback_to_load_warnings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workdir: Path
) -> None:
    monkeypatch.setenv("SYNTHTUNE_TRACEBACK", "1")
    host = loaded(monkeypatch, tmp_path, {"bad": IMPORT_RAISES})
    assert "Traceback (most recent call last)" in host.warnings[0]
    assert "fake_plugin_bad.py" in host.warnings[0]


def test_a_plugin_stage_settings_raising_is_one_line(host: PluginHost, cli_for, workdir: Path) -> None:
    with host.registered(Probe(fail_in="stage_settings", message="bad settings"), "probe"):
        result = cli_for(host)("presets", "show", str(write_probe_preset(workdir)))
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: plugin 'probe' failed in stage 'stage_settings': bad settings"


def test_a_plugin_command_raising_is_one_line_and_other_commands_work(
    host: PluginHost, cli_for, workdir: Path
) -> None:
    class Commands:
        @staticmethod
        @hookimpl
        def register_commands(cli):
            @cli.command("explode")
            def explode() -> None:
                raise KeyError("no such thing")

    class BrokenCommands:
        @staticmethod
        @hookimpl
        def register_commands(cli):
            raise RuntimeError("cannot add commands")

    with host.registered(Commands(), "commands"), host.registered(BrokenCommands(), "broken-commands"):
        cli = cli_for(host)
        result = cli("explode")
        assert result.exit_code == 1
        assert (
            "error: plugin 'commands' failed in command 'explode': KeyError: 'no such thing'" in result.stderr
        )
        assert "warning: plugin 'broken-commands' failed in register_commands: RuntimeError" in result.stderr
        assert cli("plugins", "list").exit_code == 0


def test_disable_list_turns_off_a_bundled_plugin_with_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, workdir: Path, cli_for
) -> None:
    monkeypatch.setenv("SYNTHTUNE_DISABLE_PLUGINS", "plot-generator, broken-example")
    host = PluginHost()
    host.load_entrypoints()
    assert "plot-generator" not in host.names() and "openai" in host.names()
    listed = cli_for(host)("plugins", "list")
    assert "plot-generator" not in listed.stdout
    result = cli_for(host)("run", "--preset", "plot-generator", "--yes")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: presets/plot-generator.toml: [source] plugin 'plot-generator' is not loaded: "
        "disabled by SYNTHTUNE_DISABLE_PLUGINS"
    )


def test_load_list_keeps_only_the_named_plugins(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.setenv("SYNTHTUNE_LOAD_PLUGINS", "openai")
    host = PluginHost()
    host.load_entrypoints()
    assert host.names() == ["openai"]
    with pytest.raises(ConfigError, match="not loaded: not listed in SYNTHTUNE_LOAD_PLUGINS"):
        host.plugin("plot-generator")


def test_lists_accept_distribution_names(monkeypatch: pytest.MonkeyPatch, workdir: Path) -> None:
    monkeypatch.setenv("SYNTHTUNE_DISABLE_PLUGINS", "synthtune")  # the distribution of both bundled plugins
    host = PluginHost()
    host.load_entrypoints()
    assert "openai" not in host.names() and "plot-generator" not in host.names()


def test_registered_unregisters_after_the_block_and_refuses_a_bad_plugin(host: PluginHost) -> None:
    with host.registered(Probe(), "probe") as name:
        assert name == "probe" and "probe" in host.names()
    assert "probe" not in host.names()

    class Bad:
        @hookimpl
        def source(self, nonsense):
            return []

    with pytest.raises(ConfigError, match="plugin 'bad' was not registered: PluginValidationError"):
        with host.registered(Bad(), "bad"):
            pass
    assert host.warnings == [] and "bad" not in host.names()


class WrongTypes(Probe):
    def __init__(self, wrong_in: str) -> None:
        super().__init__()
        self.wrong_in = wrong_in

    @hookimpl
    def stage_settings(self, stage: str):
        if self.wrong_in == "stage_settings" and stage == "filter":
            return {"min_chars": 3}
        return super().stage_settings(stage)

    @hookimpl
    def prompt(self, record):
        if self.wrong_in == "prompt":
            return [{"messages": [{"role": "user", "content": "hi"}]}]
        return super().prompt(record)

    @hookimpl
    async def generate(self, requests):
        async for request in requests:
            yield {"key": request.key, "text": "hi"} if self.wrong_in == "generate" else None


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ("stage_settings", "returned {'min_chars': 3} for 'filter', not a pydantic model class"),
        ("prompt", "returned dict, not a GenerationRequest"),
        ("generate", "returned dict, not a GenerationOutcome"),
    ],
)
def test_a_hook_returning_the_wrong_type_is_one_line(
    host: PluginHost, cli_for, workdir: Path, stage: str, message: str
) -> None:
    with host.registered(WrongTypes(stage), "probe"):
        result = cli_for(host)("run", "--preset", str(write_probe_preset(workdir)), "--yes")
    assert result.exit_code == 1, result.output
    where = " on record 'r0'" if stage == "prompt" else ""
    assert result.stderr == f"error: plugin 'probe' failed in stage '{stage}'{where}: {message}\n"
