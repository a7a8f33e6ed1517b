"""`tune plugin new NAME`: name validation, the files it writes, and (the must-show) a generated
plugin installed with pip -e passes its own tests and its preset writes a valid dataset."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import read_jsonl
from plugin_helpers import VENV_BIN, tune
from synthtune.core.scaffold import PluginNames, template_files
from synthtune.core.testing import FakeOpenAI


@pytest.mark.parametrize(
    "name", ["Demo", "1demo", "my_plugin", "double--hyphen", "trailing-", "x" * 41, "synthtune-x", "a b"]
)
def test_invalid_names_are_one_line_errors(cli, workdir: Path, name: str) -> None:
    result = cli("plugin", "new", name)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: invalid plugin name {name!r}: ")
    assert result.stderr.count("\n") == 1
    assert list(workdir.iterdir()) == []


def test_an_existing_folder_or_an_installed_name_is_refused(cli, workdir: Path) -> None:
    (workdir / "taken").mkdir()
    result = cli("plugin", "new", "taken")
    assert result.exit_code == 2 and "already exists" in result.stderr
    result = cli("plugin", "new", "openai")
    assert result.exit_code == 2
    assert result.stderr == "error: a plugin named 'openai' is already installed: choose another name\n"
    assert not (workdir / "openai").exists()


def test_it_writes_a_complete_package_in_dir(cli, workdir: Path) -> None:
    result = cli("plugin", "new", "word-explainer", "--dir", "plugins-here")
    assert result.exit_code == 2 and "is not a folder" in result.stderr  # --dir must exist
    (workdir / "plugins-here").mkdir()
    result = cli("plugin", "new", "word-explainer", "--dir", "plugins-here")
    assert result.exit_code == 0, result.output
    root = workdir / "plugins-here" / "word-explainer"
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "synthtune_word_explainer/__init__.py",
        "synthtune_word_explainer/presets/word-explainer.toml",
        "tests/test_synthtune_word_explainer.py",
    ]
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.synthtune]\nword-explainer = "synthtune_word_explainer"' in pyproject
    assert 'name = "synthtune-word-explainer"' in pyproject
    module = (root / "synthtune_word_explainer" / "__init__.py").read_text()
    assert "class WordExplainerSourceSettings(StageSettings)" in module
    for path in root.rglob("*.py"):
        ast.parse(path.read_text(), str(path))


def test_every_template_placeholder_is_filled() -> None:
    rendered = template_files(PluginNames.from_name("q"))
    assert all("{{" not in text and "}}" not in text.replace("}}]", "") for text in rendered.values())
    assert all("__module__" not in path and "__plugin__" not in path for path in rendered)


@pytest.fixture
def demo_installed(tmp_path: Path) -> Iterator[Path]:
    """`tune plugin new demo` in a temp folder, `pip install -e` into this venv; uninstalled after."""
    pip = [str(VENV_BIN / "python"), "-m", "pip"]
    subprocess.run([*pip, "uninstall", "-y", "-q", "synthtune-demo"], capture_output=True)
    created = tune("plugin", "new", "demo", "--dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    folder = tmp_path / "demo"
    install = [*pip, "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(folder)]
    installed = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    try:
        yield folder
    finally:
        subprocess.run([*pip, "uninstall", "-y", "-q", "synthtune-demo"], capture_output=True)


def test_a_generated_plugin_passes_its_tests_and_its_preset_runs(
    demo_installed: Path, workdir: Path, line_validators
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHTUNE_"))}
    env["SYNTHTUNE_PRESETS_DIR"] = str(workdir / "user-presets")
    env["SYNTHTUNE_DISABLE_PLUGINS"] = "broken-example"
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(demo_installed)],
        capture_output=True, text=True, env=env, cwd=workdir, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "8 passed" in tests.stdout

    listed = tune("plugins", "list", env=env, cwd=workdir)
    assert (
        "demo (synthtune-demo 0.1.0): filter, format, prompt, register_presets, source, stage_settings"
        in (listed.stdout.splitlines())
    )
    with FakeOpenAI() as server:
        env["OPENAI_BASE_URL"] = server.base_url
        run = tune("run", "--preset", "demo", "--yes", env=env, cwd=workdir)
    assert run.returncode == 0, run.stderr
    lines = read_jsonl(workdir / "runs" / "demo" / "train.jsonl")
    assert len(lines) == 8 and server.chat_count == 8  # the preset's count
    for line in lines:
        assert list(line_validators["chat"].iter_errors(line)) == []
        assert line["messages"][1]["role"] == "user" and line["messages"][2]["role"] == "assistant"


def test_multi_step_templates_fill_every_placeholder_and_parse() -> None:
    rendered = template_files(PluginNames.from_name("q"), multi_step=True)
    assert set(rendered) == set(template_files(PluginNames.from_name("q")))  # same files, other contents
    assert all("{{" not in text and "}}" not in text.replace("}}]", "") for text in rendered.values())
    module = rendered["synthtune_q/__init__.py"]
    assert "async def format(" in module and 'step="critique"' in module and 'step="revise"' in module
    for path, text in rendered.items():
        if path.endswith(".py"):
            ast.parse(text, path)


@pytest.fixture
def multi_installed(tmp_path: Path) -> Iterator[Path]:
    """`tune plugin new multi --multi-step`, `pip install -e` into this venv; uninstalled after."""
    pip = [str(VENV_BIN / "python"), "-m", "pip"]
    subprocess.run([*pip, "uninstall", "-y", "-q", "synthtune-multi"], capture_output=True)
    created = tune("plugin", "new", "multi", "--multi-step", "--dir", str(tmp_path))
    assert created.returncode == 0, created.stderr
    folder = tmp_path / "multi"
    install = [*pip, "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(folder)]
    installed = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    try:
        yield folder
    finally:
        subprocess.run([*pip, "uninstall", "-y", "-q", "synthtune-multi"], capture_output=True)


def test_a_generated_multi_step_plugin_passes_its_tests_offline_and_its_preset_runs(
    multi_installed: Path, workdir: Path, line_validators
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SYNTHTUNE_"))}
    env["SYNTHTUNE_PRESETS_DIR"] = str(workdir / "user-presets")
    env["SYNTHTUNE_DISABLE_PLUGINS"] = "broken-example"
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(multi_installed)],
        capture_output=True, text=True, env=env, cwd=workdir, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "9 passed" in tests.stdout
    with FakeOpenAI() as server:
        env["OPENAI_BASE_URL"] = server.base_url
        run = tune("run", "--preset", "multi", "--yes", env=env, cwd=workdir)
        assert run.returncode == 0, run.stderr
        assert server.chat_count == 8 * 3  # the preset's 8 words, three steps each
        rerun = tune("run", "--preset", "multi", "--yes", env=env, cwd=workdir)
        assert rerun.returncode == 0, rerun.stderr
        assert server.chat_count == 24
    lines = read_jsonl(workdir / "runs" / "multi" / "train.jsonl")
    assert len(lines) == 8
    assert all(list(line_validators["chat"].iter_errors(line)) == [] for line in lines)
