"""The ``openai`` plugin: generation on any OpenAI-compatible chat-completions endpoint (online
or through the Batch API), training with the OpenAI fine-tuning jobs API, and its jobs in ``tune jobs``.

The ``openai`` client library (with aiohttp) takes most of a second to import, so this module
imports it only when a preset actually uses the plugin: ``tune --help`` and ``tune plugins list``
never pay for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from synthtune.core import hookimpl
from synthtune.core.endpoint import Endpoint
from synthtune.core.models import (
    DatasetFiles,
    GenerationOutcome,
    GenerationRequest,
    RunContext,
    TrainingJob,
)

if TYPE_CHECKING:
    from synthtune.plugins.openai.generate import OpenAIGenerateSettings
    from synthtune.plugins.openai.train_settings import OpenAITrainSettings


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    if stage == "generate":
        from synthtune.plugins.openai.generate import OpenAIGenerateSettings

        return OpenAIGenerateSettings
    if stage == "train":
        from synthtune.plugins.openai.train_settings import OpenAITrainSettings

        return OpenAITrainSettings
    return None


# Hook functions are named apart from the submodules they load lazily: importing the
# ``generate`` (or ``train``) submodule binds that name on this package, which would hide a
# function of the same name from the next plugin manager that registers this module.
@hookimpl(specname="generate")
def generate_chat_completions(
    requests: AsyncIterator[GenerationRequest],
    settings: OpenAIGenerateSettings,
    context: RunContext,
) -> AsyncIterator[GenerationOutcome]:
    from synthtune.plugins.openai.profile import effective_settings, server_info

    server = server_info(settings, context)
    settings = effective_settings(settings, server)
    if settings.mode == "batch":
        from synthtune.plugins.openai.batch import generate_batch

        return generate_batch(requests, settings, context)
    from synthtune.plugins.openai.generate import generate_chat

    return generate_chat(requests, settings, context, modes=server.modes)


@hookimpl(specname="generate_endpoint")
def chat_completions_endpoint(settings: OpenAIGenerateSettings, context: RunContext) -> Endpoint | None:
    from synthtune.plugins.openai.profile import endpoint

    return endpoint(settings, context)


@hookimpl(specname="preflight")
def check_endpoint_ready(stage: str, settings: Any) -> None:
    """Before a run spends anything: the key is set and the server answers (generate and train
    settings both have ``base_url`` and ``api_key_env``)."""
    from synthtune.plugins.openai.preflight import check_endpoint

    check_endpoint(settings.base_url, settings.api_key_env)


@hookimpl(specname="train")
def train_with_fine_tuning_jobs(
    dataset: DatasetFiles, settings: OpenAITrainSettings, context: RunContext
) -> TrainingJob:
    from synthtune.plugins.openai.train import train_openai

    return train_openai(dataset, settings, context)


@hookimpl
def register_job_backends(register: Callable[[Any], None]) -> None:
    from synthtune.plugins.openai.job_backend import OpenAIJobBackend

    register(OpenAIJobBackend())
