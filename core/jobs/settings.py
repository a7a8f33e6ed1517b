"""Settings every hosted trainer shares (a light module: presets import it without the HTTP stack)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from synthtune.core.settings import StageSettings

# Settings that change how synthtune talks to the provider, not the job: they stay out of its key.
NOT_THE_JOB = {"wait", "poll_interval", "base_url", "timeout", "max_retries", "inference_base_url"}


class HostedTrainSettings(StageSettings):
    """What every hosted trainer's ``[train]`` settings have (each plugin adds its own)."""

    model: str = Field(min_length=1, description="the provider's name of the base model")
    method: Literal["supervised", "dpo"] | None = Field(
        default=None, description="default: dpo for preference files, supervised otherwise"
    )
    wait: bool = Field(default=True, description="follow the job until it ends")
    poll_interval: float = Field(default=15.0, gt=0, description="seconds between polls")
    timeout: float = Field(default=600.0, gt=0, description="seconds per request (uploads)")
    max_retries: int = Field(default=5, ge=0, le=50)
