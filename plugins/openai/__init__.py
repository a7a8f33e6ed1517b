"""The ``openai`` plugin: generation on any OpenAI-compatible chat-completions endpoint, and
training with the OpenAI fine-tuning jobs API (plus the ``tune jobs`` commands)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel
from synthtune.core import hookimpl
from synthtune.core.models import (
    DatasetFiles,
    GenerationOutcome,
    GenerationRequest,
    RunContext,
    TrainingJob,
)
from synthtune.plugins.openai.batch import generate_batch
from synthtune.plugins.openai.generate import OpenAIGenerateSettings, generate_chat
from synthtune.plugins.openai.train import OpenAITrainSettings, train_openai


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {"generate": OpenAIGenerateSettings, "train": OpenAITrainSettings}.get(stage)


@hookimpl
def generate(
    requests: AsyncIterator[GenerationRequest],
    settings: OpenAIGenerateSettings,
    context: RunContext,
) -> AsyncIterator[GenerationOutcome]:
    if settings.mode == "batch":
        return generate_batch(requests, settings, context)
    return generate_chat(requests, settings, context)


@hookimpl
def train(dataset: DatasetFiles, settings: OpenAITrainSettings, context: RunContext) -> TrainingJob:
    return train_openai(dataset, settings, context)


@hookimpl
def register_commands(cli: Any) -> None:
    from synthtune.plugins.openai.jobs_cmd import register

    register(cli)
