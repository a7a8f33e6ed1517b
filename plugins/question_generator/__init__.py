"""question-generator: the most important and salient questions an observer would ask about a
passage. Passages come from any text source (the ``corpus`` source in the bundled preset).

Prompt: the passage between ``PASSAGE:`` / ``END PASSAGE`` and a request for a list of questions,
with the original project's sampling (temperature 0.9, top_p 0.95, 200 tokens, penalties 0.5,
stop at a blank line). Filter: only lines ending with ``?`` (bullets and numbers stripped,
duplicates removed), at least ``min_questions`` of them. Format: passage in, questions out.

Short samples: ``[reask] attempts`` asks again for a dropped sample with the drop reason, and
``samples_per_passage`` asks for N answers per passage up front, each filtered on its own.
"""

from __future__ import annotations

from pydantic import BaseModel
from synthtune.core import (
    ChatMessage,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    TrainingExample,
    Verdict,
    hookimpl,
)
from synthtune.plugins.question_generator.filters import extract_questions, judge
from synthtune.plugins.question_generator.prompt import passage_text, question_requests
from synthtune.plugins.question_generator.settings import (
    QuestionFilterSettings,
    QuestionFormatSettings,
    QuestionPromptSettings,
)

__all__ = ["extract_questions"]


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {
        "prompt": QuestionPromptSettings,
        "filter": QuestionFilterSettings,
        "format": QuestionFormatSettings,
    }.get(stage)


@hookimpl
def prompt(record: Record, settings: QuestionPromptSettings, context: RunContext) -> list[GenerationRequest]:
    if not str(record.data.get("text", "")).strip():
        context.log.warning("question-generator: record %s has no text; skipped", record.id)
        return []
    return question_requests(record, settings)


@hookimpl
def filter(sample: Sample, settings: QuestionFilterSettings, context: RunContext) -> Verdict:
    return judge(sample.text, settings)


@hookimpl
def format(sample: Sample, settings: QuestionFormatSettings, context: RunContext) -> list[TrainingExample]:
    passage = passage_text(sample.record, settings.include_title)
    questions = sample.text.strip()
    if settings.style == "completion":
        return [
            TrainingExample.completion(
                prompt=f"{passage}\n\n{settings.demarcator}",
                completion=f" {questions}{settings.end_marker}",
            )
        ]
    return [
        TrainingExample.chat(
            [
                ChatMessage(role="system", content=settings.system_prompt),
                ChatMessage(role="user", content=passage),
                ChatMessage(role="assistant", content=questions),
            ]
        )
    ]


RUBRIC = (
    "A list of the most important and salient questions an observer would ask about the "
    "passage, one per line, each ending with a question mark. The questions are specific to "
    "this passage, cover its main points rather than trivia, do not repeat each other and are "
    "not statements. Score low for generic questions that would fit any text, duplicates, or "
    "lines that are not questions."
)


@hookimpl
def rubric(settings: QuestionFormatSettings) -> str:
    """The judge's rubric for this task (the ``judge`` and ``best-of-n`` filters' default)."""
    return RUBRIC
