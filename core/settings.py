"""Settings models the core itself relies on."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StageSettings(BaseModel):
    """Base for plugin settings: unknown keys are errors, so typos in presets are caught."""

    model_config = ConfigDict(extra="forbid")


class GenerateSettings(StageSettings):
    """Every generate backend's settings extend this: the core needs the model to render the
    request (and so its cache key) before the backend sees it."""

    model: str = Field(min_length=1)


class OutputSettings(StageSettings):
    """The ``[output]`` table of a preset."""

    valid_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
