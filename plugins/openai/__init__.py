"""The ``openai`` plugin: generation on any OpenAI-compatible chat-completions endpoint.

The ``openai`` client library (with aiohttp) takes most of a second to import, so this module
imports it only when a preset actually uses the plugin: ``tune --help`` and ``tune plugins list``
never pay for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from pydantic import BaseModel
from synthtune.core import hookimpl
from synthtune.core.models import GenerationOutcome, GenerationRequest, RunContext

if TYPE_CHECKING:
    from synthtune.plugins.openai.generate import OpenAIGenerateSettings


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    if stage != "generate":
        return None
    from synthtune.plugins.openai.generate import OpenAIGenerateSettings

    return OpenAIGenerateSettings


# Named apart from the hook: importing the ``generate`` submodule binds ``generate`` on this
# package, which would hide a function of that name once the submodule is loaded lazily.
@hookimpl(specname="generate")
def generate_chat_completions(
    requests: AsyncIterator[GenerationRequest],
    settings: OpenAIGenerateSettings,
    context: RunContext,
) -> AsyncIterator[GenerationOutcome]:
    from synthtune.plugins.openai.generate import generate_chat

    return generate_chat(requests, settings, context)
