"""Shared fixtures: an isolated working directory, a fake OpenAI server, the CLI runner.

Nothing here reaches the internet: the fake server listens on 127.0.0.1 and validates bodies
against the schemas shipped in ``core/schemas/``. Every file a test reads is in the repository
but tiktoken's encodings: they come from ``$TIKTOKEN_CACHE_DIR`` (set to
``../shared/tiktoken_cache`` when that folder exists and the variable is not set), else from
tiktoken's own download. Tests that count tokens ask for the ``encodings`` fixture, which skips
them with the reason when the encodings cannot be loaded (a fresh clone with no network).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
# The development machines and CI keep tiktoken's encodings beside the clone; nothing else is
# read from outside the repository.
SHARED_TIKTOKEN_CACHE = REPO.parent / "shared" / "tiktoken_cache"
if "TIKTOKEN_CACHE_DIR" not in os.environ and SHARED_TIKTOKEN_CACHE.is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED_TIKTOKEN_CACHE)
# CI installs a deliberately broken plugin (tests/packages/synthtune-broken-example) to prove it
# cannot break `tune`. It stays disabled in every test but the ones about exactly that
# (test_plugin_isolation.py), so its warning line does not end up in other tests' output.
TEST_DISABLED_PLUGINS = "broken-example"
os.environ["SYNTHTUNE_DISABLE_PLUGINS"] = TEST_DISABLED_PLUGINS

from synthtune.core.cli import build_app  # noqa: E402
from synthtune.core.plugins import PluginHost  # noqa: E402
from synthtune.core.testing import LINE_SCHEMAS, FakeOpenAI, load_schemas, validator_for  # noqa: E402
from synthtune.core.testing.fireworks import FakeFireworks  # noqa: E402
from synthtune.core.testing.together import FakeTogether  # noqa: E402


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with no user presets, no API key or Reddit credentials and no
    inherited base URL."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTHTUNE_PRESETS_DIR", str(tmp_path / "user-presets"))
    for name in (
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "TOGETHER_API_KEY",
        "TOGETHER_BASE_URL",
        "FIREWORKS_API_KEY",
        "FIREWORKS_ACCOUNT_ID",
        "FIREWORKS_BASE_URL",
        "SYNTHTUNE_STORE",
        "SYNTHTUNE_TRACEBACK",
        "SYNTHTUNE_LOAD_PLUGINS",
        "REDDIT_CLIENT_ID",
        "REDDIT_CLIENT_SECRET",
        "REDDIT_REFRESH_TOKEN",
        "REDDIT_USERNAME",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SYNTHTUNE_DISABLE_PLUGINS", TEST_DISABLED_PLUGINS)
    # OpenAI's fine-tuning cut-off depends on the date: every test runs on a fixed day before it
    # (tests of the cut-off set their own), never on the real date.
    monkeypatch.setenv("SYNTHTUNE_TODAY", "2026-12-02")
    return tmp_path


@pytest.fixture
def fake_openai(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    """A fake OpenAI server that validates bodies against the official request schemas (the
    copy in ``core/schemas/``); OPENAI_BASE_URL points at it. Fails the test if any request
    broke the schema."""
    server = FakeOpenAI()
    server.start()
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    try:
        yield server
    finally:
        server.stop()
    assert server.schema_errors == [], server.schema_errors[:3]


@pytest.fixture
def fake_together(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTogether]:
    """Together's fine-tuning API stand-in; TOGETHER_BASE_URL and TOGETHER_API_KEY point at it."""
    server = FakeTogether()
    server.start()
    monkeypatch.setenv("TOGETHER_BASE_URL", server.base_url)
    monkeypatch.setenv("TOGETHER_API_KEY", server.api_key)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_fireworks(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeFireworks]:
    """Fireworks' API stand-in; FIREWORKS_BASE_URL, FIREWORKS_API_KEY and FIREWORKS_ACCOUNT_ID
    point at it."""
    server = FakeFireworks()
    server.start()
    monkeypatch.setenv("FIREWORKS_BASE_URL", server.base_url)
    monkeypatch.setenv("FIREWORKS_API_KEY", server.api_key)
    monkeypatch.setenv("FIREWORKS_ACCOUNT_ID", server.account)
    try:
        yield server
    finally:
        server.stop()


PREFERENCE_PAIRS = Path(__file__).parent / "data" / "preference_pairs.jsonl"


@pytest.fixture
def host() -> PluginHost:
    """A fresh plugin host with every installed plugin loaded."""
    fresh = PluginHost()
    fresh.load_entrypoints()
    return fresh


class Cli:
    """Invoke ``tune`` in-process with typer's CliRunner."""

    def __init__(self, host: PluginHost) -> None:
        self.host = host
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Any:
        return self.runner.invoke(build_app(self.host), list(args), input=input)


@pytest.fixture
def cli(host: PluginHost) -> Cli:
    return Cli(host)


@pytest.fixture
def cli_for() -> type[Cli]:
    """``cli_for(host)``: a CLI runner on a host the test built itself."""
    return Cli


@pytest.fixture(scope="session")
def line_validators() -> dict[str, jsonschema.Draft202012Validator]:
    """Validators for one line of each fine-tuning file kind (the schemas in ``core/schemas/``)."""
    document = load_schemas(LINE_SCHEMAS)
    return {
        "chat": validator_for(document, "FineTuneChatRequestInput"),
        "completion": validator_for(document, "FineTuneCompletionRequestInput"),
        "preference": validator_for(document, "FineTunePreferenceRequestInput"),
    }


REQUIRE_ALL_ENV = "SYNTHTUNE_REQUIRE_ALL_TESTS"


def needs(what: str, install: str) -> None:
    """Stop a test whose optional requirement (an extra, a browser) is missing: a failure when
    ``$SYNTHTUNE_REQUIRE_ALL_TESTS=1`` (CI sets it, so CI proves every test runs), otherwise a
    skip that says how to install it, so the README's basic set-up still gives a green run."""
    missing(f"{what} is not installed: {install}")


def missing(message: str) -> None:
    """Skip the test with ``message``, or fail it under ``$SYNTHTUNE_REQUIRE_ALL_TESTS=1``."""
    if os.environ.get(REQUIRE_ALL_ENV) == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


ENCODINGS = ("o200k_base", "cl100k_base")
_encodings_missing: list[str] = []  # filled once: the reason the encodings cannot be loaded


def needs_encodings() -> None:
    """Stop a test that counts tokens when tiktoken's encodings cannot be loaded (no
    ``$TIKTOKEN_CACHE_DIR`` holding them and no network): see :func:`needs`."""
    if not _encodings_missing:
        from synthtune.core.errors import ConfigError
        from synthtune.core.tokens import get_encoding

        try:
            for name in ENCODINGS:
                get_encoding(name)
            _encodings_missing.append("")
        except ConfigError as error:
            _encodings_missing.append(str(error))
    if _encodings_missing[0]:
        missing(f"needs tiktoken's encodings: {_encodings_missing[0]}")


@pytest.fixture
def encodings() -> None:
    """Skip (or, under ``$SYNTHTUNE_REQUIRE_ALL_TESTS=1``, fail) unless tiktoken's encodings load."""
    needs_encodings()


def read_dataset(folder: Path) -> list[dict[str, Any]]:
    """Every example a run wrote into ``folder``: ``train.jsonl`` then ``valid.jsonl`` (if any)."""
    valid = folder / "valid.jsonl"
    return read_jsonl(folder / "train.jsonl") + (read_jsonl(valid) if valid.exists() else [])
