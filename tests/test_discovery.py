"""Plugin discovery through entry points, isolation of broken plugins, `tune plugins list`."""

from __future__ import annotations

import importlib.metadata
import json
import sys
import types
from pathlib import Path

import pytest
from synthtune.core import hookimpl
from synthtune.core.plugins import PluginHost


def test_bundled_plugins_come_through_the_entry_point_group() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="synthtune")}
    assert {"openai", "plot-generator"} <= names
    host = PluginHost()
    host.load_entrypoints()
    assert {"openai", "plot-generator"} <= set(host.names())
    assert host.warnings == []


def test_plugins_list_json_names_hooks_version_and_distribution(cli) -> None:
    result = cli("plugins", "list", "--json")
    assert result.exit_code == 0, result.output
    by_name = {p["name"]: p for p in json.loads(result.output)}
    assert by_name["openai"]["hooks"] == [
        "generate",
        "generate_endpoint",
        "preflight",
        "register_job_backends",
        "stage_settings",
        "train",
    ]
    assert by_name["openai"]["stages"] == ["generate", "train"]
    assert by_name["plot-generator"]["stages"] == ["source", "prompt", "filter", "format"]
    assert by_name["plot-generator"]["distribution"] == "synthtune"
    assert by_name["plot-generator"]["version"] == importlib.metadata.version("synthtune")


class FakeEntryPoint:
    def __init__(self, name: str, target: object | Exception) -> None:
        self.name = name
        self.target = target
        self.dist = types.SimpleNamespace(name=f"synthtune-{name}", version="9.9")

    def load(self) -> object:
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


def _patch_entry_points(monkeypatch: pytest.MonkeyPatch, entries: list[FakeEntryPoint]) -> None:
    real = importlib.metadata.entry_points

    def fake(**kwargs: str):  # type: ignore[no-untyped-def]
        if kwargs.get("group") == "synthtune":
            return [*real(group="synthtune"), *entries]
        return real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


def test_broken_plugins_are_warned_about_and_the_rest_keep_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class BadSignature:
        @hookimpl
        def filter(self, sample, not_a_parameter):  # type: ignore[no-untyped-def]
            return None

    class UnknownHook:
        @hookimpl
        def filtr(self, sample):  # type: ignore[no-untyped-def]
            return None

    good = types.ModuleType("good_plugin")

    @hookimpl
    def stage_settings(stage: str) -> None:
        return None

    good.stage_settings = stage_settings  # type: ignore[attr-defined]
    _patch_entry_points(
        monkeypatch,
        [
            FakeEntryPoint("explodes", ImportError("No module named 'missing_dependency'")),
            FakeEntryPoint("bad-signature", BadSignature()),
            FakeEntryPoint("unknown-hook", UnknownHook()),
            FakeEntryPoint("good", good),
        ],
    )
    host = PluginHost()
    host.load_entrypoints()
    assert "good" in host.names() and "plot-generator" in host.names()
    assert not {"explodes", "bad-signature", "unknown-hook"} & set(host.names())
    assert len(host.warnings) == 3
    assert (
        "plugin 'explodes' failed to import: ImportError: No module named 'missing_dependency'"
        in host.warnings[0]
    )
    assert "'bad-signature'" in host.warnings[1] and "not_a_parameter" in host.warnings[1]
    assert "'unknown-hook'" in host.warnings[2] and "filtr" in host.warnings[2]
    assert all("\n" not in w for w in host.warnings)


def test_cli_prints_one_warning_per_broken_plugin_and_still_works(
    monkeypatch: pytest.MonkeyPatch, workdir: Path
) -> None:
    _patch_entry_points(monkeypatch, [FakeEntryPoint("explodes", RuntimeError("kaboom"))])
    host = PluginHost()
    host.load_entrypoints()
    from conftest import Cli

    result = Cli(host)("presets", "list")
    assert result.exit_code == 0
    assert "plot-generator" in result.stdout
    assert result.stderr.count("warning: plugin 'explodes'") == 1


def test_allow_and_block_lists(monkeypatch: pytest.MonkeyPatch, cli) -> None:
    monkeypatch.setenv("SYNTHTUNE_DISABLE_PLUGINS", "plot-generator")
    host = PluginHost()
    host.load_entrypoints()
    assert "plot-generator" not in host.names() and "openai" in host.names()
    monkeypatch.delenv("SYNTHTUNE_DISABLE_PLUGINS")
    monkeypatch.setenv("SYNTHTUNE_LOAD_PLUGINS", "openai")
    host = PluginHost()
    host.load_entrypoints()
    assert host.names() == ["openai"]


def test_console_scripts_tune_and_synthtune_are_the_same_app() -> None:
    import subprocess

    bindir = Path(sys.executable).parent
    for name in ("tune", "synthtune"):
        result = subprocess.run([str(bindir / name), "--version"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0
        assert result.stdout.strip() == f"synthtune {importlib.metadata.version('synthtune')}"
