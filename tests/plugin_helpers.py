"""Small fake plugins and fake entry points for the plugin-loading and per-hook tests."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import needs
from pydantic import BaseModel
from synthtune.core import (
    ChatMessage,
    GenerationOutcome,
    GenerationRequest,
    Record,
    TrainingExample,
    Verdict,
    hookimpl,
)
from synthtune.core.settings import GenerateSettings

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent


class ProbeGenerateSettings(GenerateSettings):
    model: str = "probe-model"


class Probe:
    """A plugin serving every stage without a network; ``fail_in`` names a hook that raises
    (stage hooks raise on their second item, so generators fail mid-iteration)."""

    def __init__(self, fail_in: str | None = None, message: str = "boom") -> None:
        self.fail_in = fail_in
        self.message = message
        self.calls: list[str] = []

    def _maybe_fail(self, hook: str) -> None:
        self.calls.append(hook)
        if self.fail_in == hook and self.calls.count(hook) >= 2:
            raise ValueError(self.message)

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        if self.fail_in == "stage_settings":
            raise ValueError(self.message)
        return {"generate": ProbeGenerateSettings}.get(stage)

    @hookimpl
    def source(self, settings: BaseModel, context: Any) -> Iterator[Record]:
        for n in range(3):
            self._maybe_fail("source")
            yield Record(id=f"r{n}", data={"text": f"record {n}"})

    @hookimpl
    def prompt(self, record: Record) -> list[GenerationRequest]:
        self._maybe_fail("prompt")
        return [GenerationRequest(messages=[ChatMessage(role="user", content=record.data["text"])])]

    @hookimpl
    async def generate(self, requests: AsyncIterator[GenerationRequest]) -> AsyncIterator[GenerationOutcome]:
        async for request in requests:
            self._maybe_fail("generate")
            assert request.key is not None
            yield GenerationOutcome(key=request.key, text=f"answer: {request.messages[-1].content}")

    @hookimpl
    def filter(self, sample: Any) -> Verdict:
        self._maybe_fail("filter")
        return Verdict.keep()

    @hookimpl
    def format(self, sample: Any) -> list[TrainingExample]:
        self._maybe_fail("format")
        return [
            TrainingExample.chat(
                [
                    ChatMessage(role="user", content=sample.record.data["text"]),
                    ChatMessage(role="assistant", content=sample.text),
                ]
            )
        ]


PROBE_PRESET = """
name = "probe"
[source]
plugin = "probe"
[prompt]
plugin = "probe"
[generate]
plugin = "probe"
[[filter]]
plugin = "probe"
[format]
plugin = "probe"
"""


def write_probe_preset(folder: Path, name: str = "probe", plugin: str = "probe") -> Path:
    path = folder / f"{name}.toml"
    path.write_text(
        PROBE_PRESET.replace('"probe"', f'"{plugin}"').replace(f'name = "{plugin}"', f'name = "{name}"')
    )
    return path


def add_entry_points(monkeypatch: pytest.MonkeyPatch, folder: Path, modules: dict[str, str]) -> None:
    """Make ``importlib.metadata.entry_points(group="synthtune")`` also return one entry point per
    ``{plugin name: module source}``, each a real module written into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.syspath_prepend(str(folder))
    extra = []
    for name, source in modules.items():
        module = "fake_plugin_" + name.replace("-", "_")
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        extra.append(importlib.metadata.EntryPoint(name, module, "synthtune"))
        monkeypatch.delitem(sys.modules, module, raising=False)
    real = importlib.metadata.entry_points

    def entry_points(**params: Any) -> Any:
        found = real(**params)
        if params.get("group") == "synthtune":
            return importlib.metadata.EntryPoints([*found, *extra])
        return found

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def install_distribution(
    monkeypatch: pytest.MonkeyPatch,
    folder: Path,
    dist: str,
    version: str,
    plugins: dict[str, str],
    requires: tuple[str, ...] = (),
) -> Path:
    """Install a real distribution the way pip leaves one on disk, without pip: in ``folder``
    (put on ``sys.path``), a ``.dist-info`` with ``METADATA`` (name, version, ``Requires-Dist``)
    and ``entry_points.txt``, and one module per ``{plugin name: module source}``.
    ``importlib.metadata`` finds it like any installed package; a subprocess sees it with
    ``PYTHONPATH=folder``. Returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = dist.replace("-", "_")
    info = folder / f"{stem}-{version}.dist-info"
    info.mkdir()
    metadata = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {line}" for line in requires]
    (info / "METADATA").write_text("\n".join(metadata) + "\n")
    lines = ["[synthtune]"]
    for name, source in plugins.items():
        module = f"{stem}_{name.replace('-', '_')}"
        (folder / f"{module}.py").write_text(textwrap.dedent(source))
        lines.append(f"{name} = {module}")
        monkeypatch.delitem(sys.modules, module, raising=False)
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(folder))
    return folder


def tune(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``tune`` console script of this venv."""
    return subprocess.run(
        [str(VENV_BIN / "tune"), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def require_distribution(name: str, path: str) -> importlib.metadata.Distribution:
    """The installed distribution ``name``. When it is missing the test fails in CI (which
    installs it) and is skipped elsewhere with the install command: see conftest.needs."""
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        needs(name, f".venv/bin/pip install --no-deps --no-build-isolation ./{path}")
        raise  # needs() always raises; this keeps type checkers content
