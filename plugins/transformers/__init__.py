"""The ``transformers`` plugin: generation with a Hugging Face transformers model inside this
process, with no server and no key (the ``local`` extra: torch, transformers, peft).

``generate.model`` is a model folder, a LoRA adapter folder the ``trl`` trainer wrote (its base
model read from ``adapter_config.json``), a Hugging Face model name already downloaded, or a
``.gguf`` file; ``generate.adapter`` puts an adapter on top of ``model``. It runs on the GPU when
torch sees one, else on the CPU. Nothing heavy is imported until a run uses the plugin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from synthtune.core import Endpoint, GenerationOutcome, GenerationRequest, RunContext, hookimpl

if TYPE_CHECKING:
    from synthtune.plugins.transformers.settings import TransformersGenerateSettings


@hookimpl
def register_commands(cli: Any) -> None:
    """``tune merge-adapter ADAPTER --out DIR``: a LoRA adapter merged into its base model."""
    from synthtune.plugins.transformers.merge import register

    register(cli)


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    if stage == "generate":
        from synthtune.plugins.transformers.settings import TransformersGenerateSettings

        return TransformersGenerateSettings
    return None


@hookimpl(specname="generate")
def generate_in_process(
    requests: AsyncIterator[GenerationRequest], settings: TransformersGenerateSettings, context: RunContext
) -> AsyncIterator[GenerationOutcome]:
    """Answer every request with the model (and adapter) the settings name, one at a time in a
    worker thread; the chat template of the model's tokenizer frames the messages."""
    from synthtune.plugins.transformers.engine import generate_transformers

    return generate_transformers(requests, settings, context)


@hookimpl(specname="generate_endpoint")
def transformers_endpoint(settings: TransformersGenerateSettings, context: RunContext) -> Endpoint:
    """``transformers/`` + the model and adapter, with what tells their weights apart; checked
    (files, adapter base, libraries) before any work."""
    from synthtune.plugins.transformers.models import endpoint

    return endpoint(settings)
