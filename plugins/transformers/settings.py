"""``[generate]`` settings of the ``transformers`` plugin."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from synthtune.core import trust
from synthtune.core.settings import GenerateSettings


class TransformersGenerateSettings(GenerateSettings):
    """A model loaded in this process with Hugging Face transformers: no server, no key."""

    model: str = Field(
        min_length=1,
        description="a model folder (a checkpoint, or a LoRA adapter folder the trl trainer wrote), "
        "a Hugging Face model name already downloaded, or a .gguf file",
    )
    adapter: str | None = Field(
        default=None,
        description="a PEFT (LoRA) adapter folder applied on top of model; default: none, or model "
        "itself when model is an adapter folder",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(
        default="auto", description="auto: the GPU when torch sees one, else the CPU"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="auto: float32 on CPU, the checkpoint's own dtype on GPU"
    )
    max_new_tokens: int = Field(
        default=1024, ge=1, description="answer length when a request sets no max_tokens"
    )
    cache_dir: str | None = Field(
        default=None,
        description="the Hugging Face cache Hub model names are read from; default its usual place",
    )
    n_threads: int | None = Field(default=None, ge=1, description="CPU threads; default: torch's")
    trust_remote_code: bool = trust.user_only(
        False, "run the model repository's own Python code (only from --set, never from a preset file)"
    )
    concurrency: int = Field(
        default=1,
        ge=1,
        description="accepted so presets written for the openai plugin run unchanged; the model "
        "answers one request at a time",
    )
