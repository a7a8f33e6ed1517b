"""``writing-coach``: compliment-sandwich feedback from a professional editor persona.

Works on any record with ``data["text"]`` (a story) and optionally ``data["prompt"]`` or
``data["title"]``: the ``reddit`` source (r/WritingPrompts) or a folder of stories. The prompt
stage cuts long stories by tokens with a visible note, the filter stage cleans artifacts and
drops lists, quoted or continued stories, method talk and length outliers, and the format stage
writes chat (default) or prompt/completion examples.
"""

from __future__ import annotations

from pydantic import BaseModel
from synthtune.core import (
    ChatMessage,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    SamplingParams,
    TrainingExample,
    Verdict,
    hookimpl,
)
from synthtune.plugins.writing_coach.checks import judge, strip_artifacts
from synthtune.plugins.writing_coach.formats import chat_example, completion_example
from synthtune.plugins.writing_coach.prompt import editor_prompt, truncate_story
from synthtune.plugins.writing_coach.settings import (
    CoachFilterSettings,
    CoachFormatSettings,
    CoachPromptSettings,
)

FALLBACK_TOKEN_MODEL = "gpt-4o"


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {
        "prompt": CoachPromptSettings,
        "filter": CoachFilterSettings,
        "format": CoachFormatSettings,
    }.get(stage)


@hookimpl
def prompt(record: Record, settings: CoachPromptSettings, context: RunContext) -> list[GenerationRequest]:
    text = record.data.get("text")
    if not isinstance(text, str) or not text.strip():
        context.log.warning("writing-coach: record %s has no text; skipped", record.id)
        return []
    model = settings.token_model or context.model or FALLBACK_TOKEN_MODEL
    shown = truncate_story(text.strip(), settings.max_story_tokens, model, settings.truncation_note)
    content = editor_prompt(shown, record.data)
    params = SamplingParams(temperature=settings.temperature, max_tokens=settings.max_tokens)
    metadata = {"story": shown.text, "truncated": shown.truncated, "story_tokens": shown.tokens}
    return [
        GenerationRequest(
            messages=[ChatMessage(role="user", content=content)],
            params=params,
            sample_index=i,
            metadata=metadata,
        )
        for i in range(settings.samples_per_record)
    ]


@hookimpl
def filter(sample: Sample, settings: CoachFilterSettings, context: RunContext) -> Verdict:
    text = strip_artifacts(sample.text) if settings.strip_artifacts else sample.text.strip()
    reason = judge(text, sample, settings)
    return Verdict.drop(reason) if reason else Verdict.keep(text=text)


@hookimpl
def format(sample: Sample, settings: CoachFormatSettings, context: RunContext) -> list[TrainingExample]:
    if settings.style == "completion":
        return [completion_example(sample, settings)]
    return [chat_example(sample, settings)]


RUBRIC = (
    "Feedback from a professional editor on the story, as a compliment sandwich: specific "
    "praise of what works, then concrete, actionable criticism of the story's real weaknesses, "
    "then encouragement. It refers to details of this story (not advice that fits any story), "
    "is kind but honest, and does not rewrite or continue the story, quote long passages or "
    "talk about its own method. Score low for generic, flattering or vague feedback."
)


@hookimpl
def rubric(settings: CoachFormatSettings) -> str:
    """The judge's rubric for this task (the ``judge`` and ``best-of-n`` filters' default)."""
    return RUBRIC
