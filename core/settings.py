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


class ReaskSettings(StageSettings):
    """The ``[reask]`` table of a preset: when a filter drops a sample, ask the model again up
    to ``attempts`` times, with the rejected answer and the drop reason in a follow-up message
    (each attempt is its own request, step ``reask-1``, ``reask-2``...). ``--set
    reask.attempts=2`` turns it on for one run."""

    attempts: int = Field(default=0, ge=0, le=5)


class OutputSettings(StageSettings):
    """The ``[output]`` table of a preset."""

    valid_fraction: float = Field(default=0.0, ge=0.0, lt=1.0)
