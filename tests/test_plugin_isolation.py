"""A deliberately broken plugin package (tests/packages/synthtune-broken-example) installed beside
the example one: `tune plugins list` and `tune run` of another preset still work. A listing
imports every plugin and prints exactly one warning naming it; a run imports only the plugins
its preset names, so it says nothing about it, and a preset naming it fails with its reason.
CI installs both packages; these tests fail if they are missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import read_jsonl
from plugin_helpers import require_distribution, tune
from synthtune.core.testing import FakeOpenAI

WARNING = (
    "warning: plugin 'broken-example' failed to import: "
    "ModuleNotFoundError: No module named 'synthtune_missing_dependency'"
)


@pytest.fixture
def env(workdir: Path) -> dict[str, str]:
    require_distribution("synthtune-broken-example", "tests/packages/synthtune-broken-example")
    require_distribution("synthtune-haiku", "examples/synthtune-haiku")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHTUNE_"))}
    return {**base, "SYNTHTUNE_PRESETS_DIR": str(workdir / "user-presets")}  # the broken plugin is on


def test_plugins_list_works_and_warns_once(env: dict[str, str], workdir: Path) -> None:
    result = tune("plugins", "list", env=env, cwd=workdir)
    assert result.returncode == 0
    names = [line.split(" ")[0] for line in result.stdout.splitlines()]
    assert names == ["haiku", "openai", "plot-generator"] or {"haiku", "openai", "plot-generator"} <= set(
        names
    )
    assert "broken-example" not in result.stdout
    assert result.stderr.splitlines() == [WARNING]


def test_run_of_another_preset_works_without_importing_it(env: dict[str, str], workdir: Path) -> None:
    # Plugins are imported when a preset names them (or a listing needs them all): a run of a
    # preset that does not name the broken plugin never imports it, so nothing is said about it.
    with FakeOpenAI() as server:
        env["OPENAI_BASE_URL"] = server.base_url
        result = tune("run", "--preset", "plot-generator", "--limit", "3", "--yes", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == []
    assert len(read_jsonl(workdir / "runs" / "plot-generator" / "train.jsonl")) == 3


def test_a_preset_naming_the_broken_plugin_fails_with_its_reason(env: dict[str, str], workdir: Path) -> None:
    preset = workdir / "broken.toml"
    plot = (Path(__file__).parents[1] / "presets" / "plot-generator.toml").read_text()
    preset.write_text(
        plot.replace('[source]\nplugin = "plot-generator"', '[source]\nplugin = "broken-example"')
    )
    assert 'plugin = "broken-example"' in preset.read_text()
    result = tune("run", "--preset", str(preset), "--limit", "3", "--yes", env=env, cwd=workdir)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {preset}: [source] plugin 'broken-example' is not loaded: failed to import: "
        "ModuleNotFoundError: No module named 'synthtune_missing_dependency'",
        WARNING,
    ]
    assert not (workdir / "runs").exists()


def test_help_still_works(env: dict[str, str], workdir: Path) -> None:
    result = tune("--help", env=env, cwd=workdir)
    assert result.returncode == 0 and "run" in result.stdout and "plugins" in result.stdout


def test_traceback_env_shows_where_the_import_failed(env: dict[str, str], workdir: Path) -> None:
    result = tune("plugins", "list", env={**env, "SYNTHTUNE_TRACEBACK": "1"}, cwd=workdir)
    assert result.returncode == 0
    assert result.stderr.startswith(WARNING + "\nTraceback (most recent call last):")
    assert "synthtune_broken_example/__init__.py" in result.stderr
