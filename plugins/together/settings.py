"""``[train]`` settings of the ``together`` plugin (also ``tune train --backend together --set
KEY=VALUE``). Field names and defaults follow Together's ``POST /fine-tunes`` request body
(togethercomputer/openapi ``openapi.yaml`` at commit 090263aa, 2026-04-28).

This module imports nothing heavy, so presets validate without the HTTP stack loaded.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field
from synthtune.core import trust
from synthtune.core.jobs.settings import HostedTrainSettings

API_KEY_ENV = "TOGETHER_API_KEY"
BASE_URL_ENV = "TOGETHER_BASE_URL"  # the name Together's own SDK reads
DEFAULT_BASE_URL = "https://api.together.xyz/v1"


class TogetherTrainSettings(HostedTrainSettings):
    """Fine-tuning on Together: LoRA by default, SFT on chat lines or DPO on preference lines."""

    model: str = Field(
        min_length=1, description="base model, e.g. Qwen/Qwen3-8B (see Together's supported models)"
    )
    n_epochs: int = Field(default=1, ge=1, le=100, description="passes over the data (Together's default 1)")
    learning_rate: float = Field(default=1e-5, gt=0)
    batch_size: int | Literal["max"] = Field(default="max", description="an integer or 'max'")
    warmup_ratio: float = Field(default=0.0, ge=0.0, le=1.0)
    n_checkpoints: int = Field(default=1, ge=1)
    n_evals: int | None = Field(
        default=None, ge=0, description="evaluations on the validation file (default 1 when there is one)"
    )
    lora: bool = Field(default=True, description="false trains every weight (full fine-tuning)")
    lora_r: int | None = Field(default=None, ge=1, description="LoRA rank (default: Together's)")
    lora_alpha: int | None = Field(default=None, ge=1, description="default 2 x lora_r")
    lora_dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    train_on_inputs: bool | Literal["auto"] = Field(
        default="auto", description="sft only: train on user turns too"
    )
    dpo_beta: float | None = Field(default=None, gt=0, description="dpo only (Together's default 0.1)")
    suffix: str | None = Field(
        default=None, min_length=1, max_length=40, description="added to the tuned model's name"
    )
    seed: int | None = Field(default=None, ge=0, description="random_seed of the job")
    # A preset that points this elsewhere makes `tune run` ask before the key is sent there.
    base_url: str | None = trust.endpoint(
        f"default ${BASE_URL_ENV} or {DEFAULT_BASE_URL}", ["api.together.xyz", "api.together.ai"]
    )

    @property
    def api_key_env(self) -> str:
        """The variable the key is read from (fixed: a preset cannot name another)."""
        return API_KEY_ENV

    def endpoint(self) -> str:
        return (self.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
