"""Settings of the ``judge`` filter (and the judging part of ``best-of-n``)."""

from __future__ import annotations

from pydantic import Field
from synthtune.core.settings import StageSettings
from synthtune.plugins.judge.scoring import SCORE_MAX, SCORE_MIN


class JudgingSettings(StageSettings):
    """How an answer is graded: by which model, against which rubric."""

    rubric: str | None = Field(
        default=None,
        description="what a good answer is; default: the task's rubric (its plugin's `rubric` hook), "
        "else a generic one",
    )
    model: str | None = Field(
        default=None, min_length=1, description="the judge's model; default: the generate stage's model"
    )
    temperature: float = Field(default=0.0, ge=0, le=2)
    max_tokens: int = Field(default=300, ge=16, description="room for the judge's JSON reply")
    structured: bool = Field(
        default=True,
        description="ask for the JSON reply with structured output (response_format json_schema); "
        "the generate plugin falls back to what the server takes",
    )


class JudgeSettings(JudgingSettings):
    """``[[filter]]`` settings of the ``judge`` plugin."""

    min_score: float = Field(
        default=7, ge=SCORE_MIN, le=SCORE_MAX, description="drop answers the judge scores below this (1-10)"
    )
