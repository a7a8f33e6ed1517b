"""Settings of the ``question-generator`` task, one model per stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from synthtune.core.settings import StageSettings

SYSTEM = (
    "You read a passage and ask the most important and salient questions an observer would ask "
    "about it, one question per line."
)


class QuestionPromptSettings(StageSettings):
    """``[prompt]``: sampling defaults are the original project's."""

    temperature: float = Field(default=0.9, ge=0, le=2)
    top_p: float = Field(default=0.95, ge=0, le=1)
    max_tokens: int = Field(default=200, ge=16)
    frequency_penalty: float = Field(default=0.5, ge=-2, le=2)
    presence_penalty: float = Field(default=0.5, ge=-2, le=2)
    stop: list[str] = Field(default_factory=lambda: ["\n\n"], max_length=4)
    samples_per_passage: int = Field(
        default=1,
        ge=1,
        le=16,
        description="ask N times per passage (sample_index 0..N-1); every answer with enough "
        "questions is kept, so a passage whose first answer was short can still contribute",
    )
    include_title: bool = Field(default=True, description="put a record's title above its passage")


class QuestionFilterSettings(StageSettings):
    """``[[filter]]``: only ``?`` lines survive; too few questions drops the sample."""

    min_questions: int = Field(default=4, ge=1)
    max_questions: int | None = Field(default=None, ge=1, description="keep at most this many")
    min_question_chars: int = Field(default=10, ge=1, description="shorter '?' lines are not questions")


class QuestionFormatSettings(StageSettings):
    """``[format]``: chat (default) or prompt/completion."""

    style: Literal["chat", "completion"] = "chat"
    system_prompt: str = SYSTEM
    include_title: bool = True
    demarcator: str = "QUESTIONS:"
    end_marker: str = "\n\nEND"
