"""``tune try MODEL [TEXT | --file F] [--preset P]``: one request to a (fine-tuned) model."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import typer
from pydantic import BaseModel, ValidationError
from synthtune.core.errors import ConfigError, GenerationError
from synthtune.core.framing import framing_for
from synthtune.core.models import (
    Framing,
    GenerationOutcome,
    GenerationRequest,
    RunContext,
    SamplingParams,
)
from synthtune.core.plugins import PluginHost, StageCall
from synthtune.core.presets import load_preset
from synthtune.core.terminal import for_stream
from synthtune.core.trust import confirm_endpoints


async def ask_once(call: StageCall, request: GenerationRequest, settings: BaseModel) -> GenerationOutcome:
    """Send one request through a generate backend and return its outcome."""

    async def one() -> AsyncIterator[GenerationRequest]:
        yield request

    context = RunContext(run_id="try", seed=0, plugin=call.plugin)
    outcome = None
    async for answer in call(requests=one(), settings=settings, context=context):
        outcome = answer
    if outcome is None:
        raise GenerationError(f"plugin {call.plugin!r} gave no answer")
    return outcome


def local_backend(model: str) -> str | None:
    """The in-process generate plugin for a model on this machine: ``transformers`` for a model
    or adapter folder, ``local`` for a .gguf file; None for anything else (a served model)."""
    path = Path(model).expanduser()
    if path.is_dir() and any((path / name).is_file() for name in ("config.json", "adapter_config.json")):
        return "transformers"
    if model.endswith(".gguf") and path.is_file():
        return "local"
    return None


def register(app: typer.Typer, host: PluginHost) -> None:
    @app.command("try")
    def try_model(
        model: str | None = typer.Argument(
            None,
            help="Model to ask: ft:gpt-4.1-mini-...:org:suffix:id, a local model or adapter folder, "
            "a .gguf file.",
        ),
        text: str | None = typer.Argument(None, help="The input text (or --file)."),
        model_option: str | None = typer.Option(
            None, "--model", help="The model, given as an option (then the one argument is the text)."
        ),
        file: Path | None = typer.Option(None, "--file", help="Read the input text from a file."),
        preset_name: str | None = typer.Option(
            None, "--preset", "-p", help="Frame the input as this preset's dataset does."
        ),
        set_: list[str] = typer.Option([], "--set", help="Override a preset setting: STAGE.KEY=VALUE."),
        backend: str | None = typer.Option(
            None,
            "--backend",
            help="Generate plugin: openai, transformers (a model or adapter folder), local (a .gguf); "
            "default: guessed from MODEL, else the preset's, else openai.",
        ),
        temperature: float | None = typer.Option(None, "--temperature", min=0, max=2),
        max_tokens: int | None = typer.Option(None, "--max-tokens", min=1),
        show_request: bool = typer.Option(False, "--show-request", help="Print the messages sent (stderr)."),
        base_url: str | None = typer.Option(
            None,
            "--base-url",
            help="OpenAI-compatible endpoint serving MODEL (a hosted trainer's, e.g. Together).",
        ),
        api_key_env: str | None = typer.Option(
            None,
            "--api-key-env",
            help="Environment variable holding that endpoint's key (e.g. TOGETHER_API_KEY).",
        ),
        yes: bool = typer.Option(
            False, "--yes", "-y", help="Send the key where the preset's base_url points without asking."
        ),
    ) -> None:
        """Ask MODEL once, framed like the preset's training data (system prompt, demarcator, stop
        sequences), and print the answer. A local folder (a checkpoint, or the adapter the trl
        trainer wrote) is asked in-process with the transformers plugin, a .gguf file with the
        local plugin."""
        if model_option is not None:
            if text is not None:
                raise ConfigError("give the model once: as MODEL or with --model")
            model, text = model_option, model
        if model is None:
            raise ConfigError("give the model to ask: MODEL or --model PATH")
        if (text is None) == (file is None):
            raise ConfigError("give the input as TEXT or with --file, not both")
        if file is not None:
            try:
                text = file.read_text(encoding="utf-8")
            except OSError as error:
                raise ConfigError(f"--file {file}: {error.strerror or error}") from None
        assert text is not None
        endpoint = {"base_url": base_url, "api_key_env": api_key_env}
        endpoint = {key: value for key, value in endpoint.items() if value is not None}
        if preset_name is not None:
            preset = load_preset(preset_name, host, set_)
            confirm_endpoints(
                [e for e in preset.untrusted_endpoints if e.where.startswith("generate.")],
                yes=yes,
                interactive=sys.stdin.isatty(),
                say=lambda line: typer.echo(line, err=True),
                ask=typer.confirm,
                origin=f"preset {preset.name!r}",
            )
            framing = framing_for(host, preset.format)
            generate_plugin = backend or local_backend(model) or preset.generate.plugin
            values = {"model": model, **endpoint}
            if generate_plugin == preset.generate.plugin:
                values = {**preset.generate.settings.model_dump(), **values}
        else:
            framing = Framing()
            generate_plugin = backend or local_backend(model) or "openai"
            values = {"model": model, **endpoint}
        try:
            settings = host.settings_model(generate_plugin, "generate").model_validate(values)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"generate plugin {generate_plugin!r}: {where}: {first['msg']}") from None
        request = GenerationRequest(
            messages=framing.messages(text),
            params=SamplingParams(temperature=temperature, max_tokens=max_tokens, stop=framing.stop or None),
            model=model,
        )
        request.key = request.compute_key()
        if show_request:
            for message in request.messages:
                typer.echo(f"[{message.role}] {message.content}", err=True)
            if framing.stop:
                typer.echo(f"[stop] {framing.stop!r}", err=True)
        call = host.stage(generate_plugin, "generate")
        outcome = asyncio.run(ask_once(call, request, settings))
        if not outcome.ok:
            raise GenerationError(f"{model}: {outcome.error}")
        typer.echo(for_stream(outcome.text or "", sys.stdout))
