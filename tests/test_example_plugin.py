"""The example third-party package examples/synthtune-haiku, installed with pip (CI does it, not
editable): found through its entry point alone, listed with version and hooks, its preset runs."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import read_jsonl
from plugin_helpers import REPO, require_distribution, tune
from synthtune.core.plugins import PluginHost
from synthtune.core.testing import FakeOpenAI

HAIKU = "moonlight on the pond\na frog considers the deep\nthen decides to wait"


@pytest.fixture
def haiku_dist() -> importlib.metadata.Distribution:
    return require_distribution("synthtune-haiku", "examples/synthtune-haiku")


def env_for(workdir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHTUNE_"))}
    env.update(
        SYNTHTUNE_PRESETS_DIR=str(workdir / "user-presets"), SYNTHTUNE_DISABLE_PLUGINS="broken-example"
    )
    env.update(extra)
    return env


def test_it_is_discovered_only_through_its_installed_entry_point(haiku_dist, host: PluginHost) -> None:
    [entry_point] = [ep for ep in haiku_dist.entry_points if ep.group == "synthtune"]
    assert (entry_point.name, entry_point.value) == ("haiku", "synthtune_haiku")
    spec = importlib.util.find_spec("synthtune_haiku")
    assert spec is not None and spec.origin is not None
    origin = Path(spec.origin).resolve()
    # installed into the venv's site-packages, not imported from the repository by path
    assert origin.is_relative_to(Path(sysconfig.get_paths()["purelib"]).resolve())
    assert not origin.is_relative_to(REPO / "examples")
    direct_url = json.loads(haiku_dist.read_text("direct_url.json") or "{}")
    assert not direct_url.get("dir_info", {}).get("editable"), "install it with pip, not pip -e"
    assert not any(Path(entry or ".").resolve().is_relative_to(REPO / "examples") for entry in sys.path)
    info = {plugin.name: plugin for plugin in host.info()}["haiku"]
    assert (info.distribution, info.version, info.module) == ("synthtune-haiku", "0.3.1", "synthtune_haiku")


def test_plugins_list_shows_its_version_and_hooks(haiku_dist, workdir: Path) -> None:
    result = tune("plugins", "list", env=env_for(workdir), cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert (
        "haiku (synthtune-haiku 0.3.1): filter, format, prompt, register_presets, source, stage_settings"
        in result.stdout.splitlines()
    )
    assert result.stderr == ""


def test_presets_list_shows_its_preset(haiku_dist, workdir: Path) -> None:
    result = tune("presets", "list", env=env_for(workdir), cwd=workdir)
    assert result.returncode == 0, result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("haiku ")]
    assert "three lines each" in line and line.endswith("[haiku]")


def test_run_with_its_preset_writes_a_valid_dataset(haiku_dist, workdir: Path, line_validators) -> None:
    with FakeOpenAI(responder=lambda body: HAIKU) as server:
        result = tune(
            "run", "--preset", "haiku", "--limit", "6", "--yes",
            env=env_for(workdir, OPENAI_BASE_URL=server.base_url), cwd=workdir,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = read_jsonl(workdir / "runs" / "haiku" / "train.jsonl")
    assert len(lines) == 6 and server.chat_count == 6
    assert all(list(line_validators["chat"].iter_errors(line)) == [] for line in lines)
    assert lines[0]["messages"][-1]["content"] == HAIKU


def test_disabling_its_distribution_removes_it(haiku_dist, workdir: Path) -> None:
    env = env_for(workdir, SYNTHTUNE_DISABLE_PLUGINS="synthtune-haiku,broken-example")
    listed = tune("plugins", "list", env=env, cwd=workdir)
    assert listed.returncode == 0 and "haiku" not in listed.stdout
    result = tune("run", "--preset", "haiku", "--yes", env=env, cwd=workdir)
    assert result.returncode == 2
    assert "unknown preset 'haiku'" in result.stderr


def test_its_own_tests_pass_with_the_public_fixtures(haiku_dist, workdir: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        str(REPO / "examples/synthtune-haiku"),
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env_for(workdir), cwd=workdir, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 passed" in result.stdout
