"""pytest fixtures for synthtune plugin authors, loaded automatically once synthtune is installed.

synthtune registers this module under the ``pytest11`` entry point, so any test in an
environment with synthtune installed can ask for these fixtures without a conftest line. To keep
that harmless for projects that never use them, the module imports nothing from synthtune until a
fixture is requested, adds no options or hooks, and every fixture name starts with
``synthtune_``. Turn it off with ``pytest -p no:synthtune``.

- ``synthtune_fake_openai``: a running fake OpenAI server; ``OPENAI_BASE_URL`` points at it and
  ``OPENAI_API_KEY`` is unset. Set ``.responder`` to script answers. The test fails if any
  request broke the official request schema.
- ``synthtune_host``: a fresh plugin host with every installed plugin loaded.
- ``synthtune_register(plugin, name=None)``: register a plugin object on ``synthtune_host`` for
  this test only.
- ``synthtune_run(preset, overrides=(), limit=None)``: run a preset against the fake server in a
  temporary folder; returns a :class:`~synthtune.core.testkit.RunOutput`.
- ``synthtune_cli(*args)``: invoke ``tune`` in-process on ``synthtune_host``; returns typer's
  ``Result`` (``exit_code``, ``stdout``, ``stderr``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def synthtune_fake_openai(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A running :class:`~synthtune.core.testing.FakeOpenAI`; the environment points at it."""
    from synthtune.core.testing import FakeOpenAI

    server = FakeOpenAI()
    server.start()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    try:
        yield server
    finally:
        server.stop()
    assert server.schema_errors == [], server.schema_errors[:3]


@pytest.fixture
def synthtune_host() -> Any:
    """A fresh :class:`~synthtune.core.plugins.PluginHost` with the installed plugins loaded."""
    from synthtune.core.testkit import installed_host

    return installed_host()


@pytest.fixture
def synthtune_register(synthtune_host: Any) -> Iterator[Callable[..., str]]:
    """``register(plugin, name=None) -> name``: add a plugin to ``synthtune_host`` until the test
    ends. Raises if the plugin cannot be registered."""
    with ExitStack() as stack:

        def register(plugin: object, name: str | None = None) -> str:
            return stack.enter_context(synthtune_host.registered(plugin, name))

        yield register


@pytest.fixture
def synthtune_run(synthtune_host: Any, synthtune_fake_openai: Any, tmp_path: Path) -> Callable[..., Any]:
    """``run(preset, overrides=(), limit=None) -> RunOutput`` against ``synthtune_fake_openai``,
    with ``synthtune_host``'s plugins; the run store and files stay in ``tmp_path / "run"``, so a
    second call in the same test is a rerun (answered from the store)."""
    from synthtune.core.testkit import run_preset

    def run(preset: str | Path, overrides: tuple[str, ...] | list[str] = (), limit: int | None = None) -> Any:
        return run_preset(
            preset,
            overrides=overrides,
            limit=limit,
            host=synthtune_host,
            server=synthtune_fake_openai,
            workdir=tmp_path / "run",
        )

    return run


@pytest.fixture
def synthtune_cli(synthtune_host: Any) -> Callable[..., Any]:
    """``cli(*args) -> Result``: run ``tune ARGS`` in-process with typer's CliRunner."""
    from synthtune.core.cli import build_app
    from typer.testing import CliRunner

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None) -> Any:
        return runner.invoke(build_app(synthtune_host), list(args), input=input)

    return invoke
