"""Public testing helpers for plugin authors (and synthtune's own tests).

Everything here runs offline: generation goes to :class:`~synthtune.core.testing.FakeOpenAI`, a
real HTTP server on 127.0.0.1 that validates every request against the official OpenAI schema.

- :func:`fake_openai_server`: start the fake server and point ``OPENAI_BASE_URL`` at it.
- :func:`run_preset`: run a preset (by name or path) in a temporary folder and get back the
  dataset lines, the rejected lines, the report and the requests the server saw.
- :func:`registered_plugin`: register a plugin object on a host for one ``with`` block.
- :func:`make_sample`: a :class:`~synthtune.core.models.Sample` for unit-testing filter and
  format hooks.

With pytest, the same helpers are fixtures (``synthtune_fake_openai``, ``synthtune_run``,
``synthtune_host``, ``synthtune_register``, ``synthtune_cli``): see
:mod:`synthtune.core.pytest_plugin`, which pytest loads automatically once synthtune is installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from synthtune.core.models import (
    ChatMessage,
    GenerationOutcome,
    GenerationRequest,
    Record,
    Sample,
)
from synthtune.core.plugins import PluginHost

if TYPE_CHECKING:
    from synthtune.core.testing import FakeOpenAI, Reply

Responder = Callable[[dict[str, Any]], "Reply | str"]


@contextmanager
def patched_env(**values: str | None) -> Iterator[None]:
    """Set (or, with ``None``, remove) environment variables for a ``with`` block, then restore."""
    saved = {name: os.environ.get(name) for name in values}
    try:
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def fake_openai_server(responder: Responder | None = None) -> Iterator[FakeOpenAI]:
    """Start a :class:`FakeOpenAI` server, set ``OPENAI_BASE_URL`` to it and unset
    ``OPENAI_API_KEY`` for the block; stop it afterwards. ``responder`` maps a request body to
    the answer text (or a ``Reply``); the default is a deterministic ~1,200-character text."""
    from synthtune.core.testing import FakeOpenAI

    server = FakeOpenAI(responder)
    server.start()
    try:
        with patched_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=None):
            yield server
    finally:
        server.stop()


def installed_host() -> PluginHost:
    """A fresh :class:`PluginHost` with every installed plugin loaded (honouring the
    ``SYNTHTUNE_LOAD_PLUGINS``/``SYNTHTUNE_DISABLE_PLUGINS`` environment variables)."""
    host = PluginHost()
    host.load_entrypoints()
    return host


@contextmanager
def registered_plugin(host: PluginHost, plugin: object, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module, class or instance with ``@hookimpl`` functions) on ``host``
    for a ``with`` block and unregister it afterwards; yields its name. Raises
    :class:`~synthtune.core.errors.ConfigError` if it cannot be registered (say, a hook argument
    that is not in the spec)."""
    with host.registered(plugin, name) as registered_name:
        yield registered_name


def make_sample(
    text: str,
    *,
    record: Record | None = None,
    request: GenerationRequest | None = None,
    finish_reason: str = "stop",
) -> Sample:
    """A sample whose generation answered ``text``, for unit tests of filter and format hooks."""
    record = record or Record(id="record-1", data={"text": "a test record"})
    request = request or GenerationRequest(messages=[ChatMessage(role="user", content="a test prompt")])
    request = request.model_copy(update={"key": request.key or "test-key", "record_id": record.id})
    generation = GenerationOutcome(key=request.key or "test-key", text=text, finish_reason=finish_reason)
    return Sample(record=record, request=request, generation=generation, text=text)


@dataclass
class RunOutput:
    """What :func:`run_preset` returns: the dataset as parsed JSON lines and the run report."""

    preset: str
    out_dir: Path
    train: list[dict[str, Any]]
    valid: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    report: dict[str, Any]
    requests: list[dict[str, Any]] = field(default_factory=list)  # bodies the fake server got

    def line_errors(self) -> list[str]:
        """Schema errors of every train/valid line against the official OpenAI fine-tuning line
        schemas (chat, completion or preference, chosen per line); empty when all are valid."""
        from synthtune.core.openai_schemas import LINE_SCHEMAS, load_schemas, validator_for

        document = load_schemas(LINE_SCHEMAS)
        validators = {
            "chat": validator_for(document, "FineTuneChatRequestInput"),
            "completion": validator_for(document, "FineTuneCompletionRequestInput"),
            "preference": validator_for(document, "FineTunePreferenceRequestInput"),
        }
        errors = []
        for split, lines in (("train", self.train), ("valid", self.valid)):
            for number, line in enumerate(lines, 1):
                kind = "chat" if "messages" in line else "completion"
                kind = "preference" if "preferred_output" in line else kind
                errors += [f"{split}.jsonl:{number}: {e.message}" for e in validators[kind].iter_errors(line)]
        return errors


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_preset(
    preset: str | Path,
    *,
    overrides: Iterable[str] = (),
    limit: int | None = None,
    host: PluginHost | None = None,
    server: FakeOpenAI | None = None,
    responder: Responder | None = None,
    workdir: Path | None = None,
) -> RunOutput:
    """Run ``preset`` (a name or a ``.toml`` path) end to end and return its output.

    ``overrides`` are ``--set`` assignments (``"prompt.temperature=0.2"``), ``limit`` caps the
    source records. Generation goes to ``server`` if given, else to a fake server started for
    this run (answering with ``responder``). The run store and dataset go in ``workdir`` (kept)
    or a temporary folder (removed; the returned lines are already read). User presets in
    ``~/.config/synthtune/presets`` are ignored, so tests do not depend on the machine.
    """
    from synthtune.core.pipeline import Pipeline
    from synthtune.core.presets import USER_DIR_ENV, load_preset
    from synthtune.core.store import RunStore

    host = host or installed_host()
    with ExitStack() as stack:
        if server is None:
            server = stack.enter_context(fake_openai_server(responder))
        else:
            stack.enter_context(patched_env(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=None))
        folder = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="synthtune-")))
        folder.mkdir(parents=True, exist_ok=True)
        stack.enter_context(patched_env(**{USER_DIR_ENV: str(folder / "no-user-presets")}))
        resolved = load_preset(str(preset), host, overrides)
        out_dir = folder / "runs" / resolved.name
        seen = server.chat_count
        store = RunStore(folder / "synthtune.db")
        try:
            result = asyncio.run(Pipeline(host, resolved, store, out_dir, limit=limit).run())
        finally:
            store.close()
        return RunOutput(
            preset=resolved.name,
            out_dir=out_dir,
            train=_read_jsonl(out_dir / "train.jsonl"),
            valid=_read_jsonl(out_dir / "valid.jsonl"),
            rejected=_read_jsonl(out_dir / "rejected.jsonl"),
            report=result.report,
            requests=list(server.chat_requests[seen:]),
        )
