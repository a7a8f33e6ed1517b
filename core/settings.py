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


class EvalSettings(StageSettings):
    """The ``[eval]`` table of a preset: the held-out split ``tune run`` leaves out of the
    dataset and ``tune eval`` asks every model on.

    A source record is held out when a hash of the preset's seed and the record's id falls below
    ``holdout`` (a fraction of the records), up to the first ``holdout_max`` such records in
    source order. The split depends on nothing else: a rerun, a resumed run, ``--limit`` and
    ``tune eval`` all find the same records.
    """

    holdout: float = Field(ge=0.0, lt=1.0, description="fraction of the source's records held out (0: none)")
    holdout_max: int = Field(default=50, ge=1, description="at most this many records held out")
    rubric: str | None = Field(
        default=None, description="what a good answer does (the judge's 1-10 score); default: the description"
    )
