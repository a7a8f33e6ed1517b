"""qa-pairs: question -> answer chat lines, in two steps.

Step 1 (the prompt stage) asks for several questions about a record in one request: a built-in
topic (this plugin's source) or a passage (the ``corpus`` source, or any source whose records
have ``data["text"]``). The filter reads the questions (a JSON list) and drops a record with too
few. Step 2 (the format stage, an ``async def`` hook) asks for each question's answer in its own
request, ``await context.complete(request, step="answer")``, all of a record's answers at once;
each answer is cached in the run store, so a rerun or a resume after a kill sends none of them
again. Each (question, answer) pair becomes one chat line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from pydantic import BaseModel
from synthtune.core import (
    ChatMessage,
    GenerationOutcome,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    TrainingExample,
    Verdict,
    hookimpl,
)
from synthtune.plugins.qa_pairs.settings import (
    QaFilterSettings,
    QaFormatSettings,
    QaPromptSettings,
    QaSourceSettings,
)
from synthtune.plugins.qa_pairs.steps import (
    answer_request,
    parse_questions,
    passage_of,
    questions_request,
)

STEP = "answer"
RUBRIC = (
    'A JSON object {"questions": [...]} whose questions are distinct, specific, stand on their '
    "own without the source text, and are worth a full answer: what a curious learner would "
    "really ask about the topic or passage. Score low for trivia, near-duplicates, yes/no "
    "questions or questions that cannot be answered."
)


def _slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    models: dict[str, type[BaseModel]] = {
        "source": QaSourceSettings,
        "prompt": QaPromptSettings,
        "filter": QaFilterSettings,
        "format": QaFormatSettings,
    }
    return models.get(stage)


@hookimpl
def source(settings: QaSourceSettings, context: RunContext) -> Iterator[Record]:
    """The topics, taking the areas in turn (so a ``--limit`` covers every area evenly)."""
    areas = [(area, items) for area, items in settings.topics.items() if items]
    longest = max((len(items) for _, items in areas), default=0)
    for i in range(longest):
        for area, items in areas:
            if i < len(items):
                topic = items[i]
                yield Record(id=f"{_slug(area)}/{_slug(topic)}", category=area, data={"topic": topic})


@hookimpl
def prompt(record: Record, settings: QaPromptSettings, context: RunContext) -> list[GenerationRequest]:
    """Step 1: one request for ``questions_per_record`` questions about the record."""
    return [
        questions_request(
            record,
            count=settings.questions_per_record,
            temperature=settings.temperature,
            max_tokens=settings.max_tokens,
            structured=settings.structured,
            passage_limit=settings.max_passage_chars,
        )
    ]


@hookimpl
def filter(sample: Sample, settings: QaFilterSettings, context: RunContext) -> Verdict:
    """Read the questions; drop the record when fewer than ``min_questions`` are usable."""
    questions = parse_questions(
        sample.text, limit=settings.max_questions, min_chars=settings.min_question_chars
    )
    if len(questions) < settings.min_questions:
        return Verdict.drop(f"too few questions ({len(questions)} < {settings.min_questions})")
    return Verdict.keep(data={"questions": questions})


@hookimpl
async def format(sample: Sample, settings: QaFormatSettings, context: RunContext) -> list[TrainingExample]:
    """Step 2: answer each question in its own request (all at once); one chat line per pair."""
    questions = sample.data.get("questions")
    if not isinstance(questions, list):  # no qa-pairs filter in the preset: read them here
        questions = parse_questions(sample.text, limit=QaFilterSettings().max_questions, min_chars=1)
    passage = passage_of(sample.record)
    requests = [
        answer_request(
            question,
            passage,
            model=settings.answer_model,
            temperature=settings.answer_temperature,
            max_tokens=settings.answer_max_tokens,
        )
        for question in questions
    ]
    results = await asyncio.gather(
        *(context.complete(request, step=STEP) for request in requests), return_exceptions=True
    )
    for result in results:  # every call settled (each answer is in the store): now fail if one did
        if isinstance(result, BaseException):
            raise result
    examples = []
    for question, outcome in zip(questions, results, strict=True):
        assert isinstance(outcome, GenerationOutcome)
        answer = (outcome.text or "").strip()
        if not answer:
            continue
        user = f"{passage}\n\n{question}" if passage is not None and settings.passage_in_dataset else question
        messages = (
            [ChatMessage(role="system", content=settings.system_prompt)] if settings.system_prompt else []
        )
        messages += [ChatMessage(role="user", content=user), ChatMessage(role="assistant", content=answer)]
        examples.append(TrainingExample.chat(messages))
    return examples


@hookimpl
def rubric(settings: QaFormatSettings) -> str:
    """The judge's rubric for step 1's questions (what the ``judge`` filter grades)."""
    return RUBRIC
