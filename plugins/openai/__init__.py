"""The ``openai`` plugin: generation on any OpenAI-compatible chat-completions endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import BaseModel
from synthtune.core import hookimpl
from synthtune.core.models import GenerationOutcome, GenerationRequest, RunContext
from synthtune.plugins.openai.batch import generate_batch
from synthtune.plugins.openai.generate import OpenAIGenerateSettings, generate_chat


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {"generate": OpenAIGenerateSettings}.get(stage)


@hookimpl
def generate(
    requests: AsyncIterator[GenerationRequest],
    settings: OpenAIGenerateSettings,
    context: RunContext,
) -> AsyncIterator[GenerationOutcome]:
    if settings.mode == "batch":
        return generate_batch(requests, settings, context)
    return generate_chat(requests, settings, context)
