"""Settings of the ``qa-pairs`` plugin's stages."""

from __future__ import annotations

from pydantic import Field
from synthtune.core.settings import StageSettings
from synthtune.plugins.qa_pairs.topics import TOPICS


class QaSourceSettings(StageSettings):
    """``[source]``: the built-in topics (or your own), as records ``{"topic": ...}``."""

    topics: dict[str, list[str]] = Field(
        default_factory=lambda: {area: list(items) for area, items in TOPICS.items()},
        description="area -> topics; records take the areas in turn",
    )


class QaPromptSettings(StageSettings):
    """``[prompt]``: step 1, the request for several questions about a record."""

    questions_per_record: int = Field(default=4, ge=1, le=20)
    temperature: float = Field(default=0.9, ge=0, le=2)
    max_tokens: int = Field(default=600, ge=16)
    structured: bool = Field(
        default=True,
        description='ask for {"questions": [...]} with structured output '
        "(the generate plugin falls back to what the server takes)",
    )
    max_passage_chars: int = Field(default=6000, ge=200, description="a longer passage is cut here")


class QaFilterSettings(StageSettings):
    """``[[filter]]``: the questions parse, and there are enough of them."""

    min_questions: int = Field(default=1, ge=1)
    max_questions: int = Field(default=20, ge=1, description="questions past this are left out")
    min_question_chars: int = Field(default=10, ge=1)


class QaFormatSettings(StageSettings):
    """``[format]``: step 2, one answer request per question; chat lines question -> answer."""

    system_prompt: str | None = Field(
        default=None, description="a system message for every dataset line (none by default)"
    )
    answer_model: str | None = Field(default=None, min_length=1, description="default: the generate model")
    answer_temperature: float = Field(default=0.7, ge=0, le=2)
    answer_max_tokens: int = Field(default=800, ge=16)
    passage_in_dataset: bool = Field(
        default=False,
        description="put the passage before the question in the dataset's user message (corpus records); "
        "the answer request always has it",
    )
