"""The salient-questions prompt."""

from __future__ import annotations

from synthtune.core import ChatMessage, GenerationRequest, Record, SamplingParams
from synthtune.plugins.question_generator.settings import QuestionPromptSettings


def passage_text(record: Record, include_title: bool) -> str:
    """The record's text, with its title on the first line when there is one and it is wanted."""
    text = str(record.data.get("text", "")).strip()
    title = record.data.get("title")
    if include_title and title:
        return f"{str(title).strip()}\n\n{text}"
    return text


def question_prompt(passage: str) -> str:
    """The user message: the passage between markers, then the request."""
    return (
        f"PASSAGE:\n\n{passage}\n\nEND PASSAGE\n\n"
        "Write a list of the most important and salient questions an observer would ask about "
        "the passage above: the questions a thoughtful, curious reader would want answered about "
        "what is happening, why, who is involved, what it means and what might come next. "
        "Ask probing questions, not trivia. Write one question per line, with no introduction, "
        "no numbering and no blank lines."
    )


def question_requests(record: Record, settings: QuestionPromptSettings) -> list[GenerationRequest]:
    """``samples_per_passage`` requests for one record, told apart by ``sample_index``."""
    params = SamplingParams(
        temperature=settings.temperature,
        top_p=settings.top_p,
        max_tokens=settings.max_tokens,
        frequency_penalty=settings.frequency_penalty,
        presence_penalty=settings.presence_penalty,
        stop=list(settings.stop) or None,
    )
    passage = passage_text(record, settings.include_title)
    messages = [ChatMessage(role="user", content=question_prompt(passage))]
    return [
        GenerationRequest(messages=messages, params=params, sample_index=i)
        for i in range(settings.samples_per_passage)
    ]
