"""``[train]`` settings of the ``fireworks`` plugin (also ``tune train --backend fireworks --set
KEY=VALUE``). Names follow Fireworks' job fields (fw-ai-external/python-sdk at commit 8399c127,
2026-07-21: ``SupervisedFineTuningJobCreateParams``, ``DpoJobCreateParams``, ``TrainingConfig``,
``DpoConfig``).

This module imports nothing heavy, so presets validate without the HTTP stack loaded.
"""

from __future__ import annotations

import os

from pydantic import Field
from synthtune.core import trust
from synthtune.core.jobs.settings import HostedTrainSettings

API_KEY_ENV = "FIREWORKS_API_KEY"
ACCOUNT_ENV = "FIREWORKS_ACCOUNT_ID"  # the names Fireworks' own SDK reads
BASE_URL_ENV = "FIREWORKS_BASE_URL"
DEFAULT_BASE_URL = "https://api.fireworks.ai"


class FireworksTrainSettings(HostedTrainSettings):
    """Fine-tuning on Fireworks: supervised (LoRA) on chat lines, DPO on preference lines."""

    model: str = Field(
        min_length=1, description="base model, e.g. accounts/fireworks/models/qwen3-8b (a tunable model)"
    )
    account_id: str | None = Field(
        default=None, description=f"your Fireworks account id (default ${ACCOUNT_ENV})"
    )
    epochs: int | None = Field(default=None, ge=1, description="default: Fireworks'")
    learning_rate: float | None = Field(default=None, gt=0)
    lora_rank: int | None = Field(default=None, ge=1)
    max_context_length: int | None = Field(default=None, ge=1)
    batch_size: int | None = Field(default=None, ge=1, description="tokens per packed batch")
    early_stop: bool | None = Field(default=None, description="supervised only")
    dpo_beta: float | None = Field(default=None, gt=0, lt=0.5, description="dpo only: 0 < beta < 0.5")
    suffix: str | None = Field(
        default=None, min_length=1, max_length=40, description="starts the tuned model's id"
    )
    output_model: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="the tuned model's id (default: suffix + key)",
    )
    # A preset that points these elsewhere makes `tune run` ask before the key is sent there.
    base_url: str | None = trust.endpoint(
        f"API origin (default ${BASE_URL_ENV} or {DEFAULT_BASE_URL})", ["api.fireworks.ai", "*.fireworks.ai"]
    )
    inference_base_url: str | None = trust.endpoint("default: BASE_URL/inference/v1", ["*.fireworks.ai"])

    @property
    def api_key_env(self) -> str:
        """The variable the key is read from (fixed: a preset cannot name another)."""
        return API_KEY_ENV

    def origin(self) -> str:
        return (self.base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")

    def account(self) -> str | None:
        return self.account_id or os.environ.get(ACCOUNT_ENV) or None
