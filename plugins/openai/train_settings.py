"""Settings of the ``openai`` plugin's ``train`` stage, apart from the trainer itself: resolving a
preset validates its ``[train]`` table on every run, and the trainer module imports the
``openai`` package (a second or more), which a run that does not train never needs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from synthtune.core import trust
from synthtune.core.settings import StageSettings
from synthtune.plugins.openai.client import KEY_VARIABLES, KNOWN_HOSTS

Auto = Literal["auto"]


class OpenAITrainSettings(StageSettings):
    """``[train]`` settings of the ``openai`` plugin (also ``tune train --set KEY=VALUE``)."""

    model: str = Field(min_length=1, description="base model, e.g. gpt-4.1-mini-2025-04-14")
    method: Literal["supervised", "dpo"] | None = Field(
        default=None, description="default: dpo for preference files, supervised otherwise"
    )
    n_epochs: int | Auto = Field(default="auto", description="1..50 or auto")
    batch_size: int | Auto = "auto"
    learning_rate_multiplier: float | Auto = "auto"
    beta: float | Auto = Field(default="auto", description="dpo only: 0 < beta <= 2")
    suffix: str | None = Field(default=None, min_length=1, max_length=64)
    seed: int | None = Field(default=None, ge=0, le=2_147_483_647)
    metadata: dict[str, str] = Field(default_factory=dict, description="up to 15 key/value pairs")
    wait: bool = Field(default=True, description="follow the job until it ends")
    poll_interval: float = Field(default=10.0, gt=0, description="seconds between polls")
    base_url: str | None = trust.endpoint("default $OPENAI_BASE_URL or OpenAI", KNOWN_HOSTS)
    api_key_env: str = trust.secret_env("OPENAI_API_KEY", KEY_VARIABLES)
    timeout: float = Field(default=600.0, gt=0, description="seconds per request (uploads)")
    max_retries: int = Field(default=5, ge=0, le=50)
    ignore_cutoff: bool = Field(
        default=False,
        description="create a job even after OpenAI's 2027-01-06 cut-off (organisations it still lets in)",
    )

    @field_validator("n_epochs")
    @classmethod
    def _epochs(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 50:
            raise ValueError("n_epochs must be between 1 and 50 (or 'auto')")
        return value

    @field_validator("batch_size")
    @classmethod
    def _batch(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError("batch_size must be between 1 and 256 (or 'auto')")
        return value

    @field_validator("learning_rate_multiplier")
    @classmethod
    def _lr(cls, value: float | str) -> float | str:
        if not isinstance(value, str) and value <= 0:
            raise ValueError("learning_rate_multiplier must be above 0 (or 'auto')")
        return value

    @field_validator("beta")
    @classmethod
    def _beta(cls, value: float | str) -> float | str:
        if not isinstance(value, str) and not 0 < value <= 2:
            raise ValueError("beta must be in (0, 2] (or 'auto')")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 15:
            raise ValueError("at most 15 metadata pairs (synthtune adds one)")
        for key, item in value.items():
            if len(key) > 64 or len(item) > 512:
                raise ValueError("metadata keys are at most 64 characters, values at most 512")
        return value
