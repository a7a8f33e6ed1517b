"""The two steps of ``qa-pairs`` as pure functions: the requests and the reading of the questions.

Step 1 asks for several questions about a record in one request (a JSON list); step 2 asks for
each question's answer in its own request. Both requests are derived only from the record, the
settings and step 1's answer, so each is a stable cache key: a rerun or a resume after a kill
answers them from the run store.
"""

from __future__ import annotations

import json
import re
from typing import Any

from synthtune.core import ChatMessage, GenerationRequest, Record, SamplingParams


def questions_format(count: int) -> dict[str, Any]:
    """The ``response_format`` of step 1: ``{"questions": [count strings]}``."""
    schema = {
        "type": "object",
        "properties": {
            "questions": {"type": "array", "items": {"type": "string"}, "minItems": count, "maxItems": count}
        },
        "required": ["questions"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "questions", "schema": schema, "strict": True}}


QUESTION_SYSTEM = "You write clear, specific questions that a curious learner would ask."
ANSWER_SYSTEM = (
    "You are a knowledgeable, careful teacher. Answer the question accurately and completely, "
    "in a few well-organised paragraphs, without preamble."
)
GROUNDED_SYSTEM = (
    "You are a knowledgeable, careful teacher. Answer the question from the passage, accurately "
    "and completely, in a few well-organised paragraphs, without preamble and without mentioning "
    "'the passage'. Where the passage does not say, say so briefly."
)


def passage_of(record: Record, limit: int | None = None) -> str | None:
    """The record's passage (``data["text"]``, the corpus source's records), or ``None``."""
    text = record.data.get("text")
    if not isinstance(text, str) or not text.strip():
        return None
    text = text.strip()
    return text if limit is None or len(text) <= limit else text[:limit].rstrip() + " [...]"


def subject_of(record: Record) -> str:
    """What the questions are about: the record's topic, title or id."""
    for name in ("topic", "title"):
        value = record.data.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return record.id


def questions_prompt(record: Record, count: int, passage: str | None) -> str:
    ask = (
        f"Write {count} distinct questions ABOUT. Each question must stand on its own (no "
        "'this', 'the passage' or 'the text'), be specific, and ask something worth a full answer; "
        'vary them (what, why, how, compare). Reply with JSON: {"questions": ["...", ...]}.'
    )
    if passage is not None:
        return f"PASSAGE:\n\n{passage}\n\nEND PASSAGE\n\n" + ask.replace(
            "ABOUT", "that the passage above answers"
        )
    return ask.replace("ABOUT", f"a curious learner would ask about {subject_of(record)}")


def questions_request(
    record: Record, *, count: int, temperature: float, max_tokens: int, structured: bool, passage_limit: int
) -> GenerationRequest:
    """Step 1: one request for ``count`` questions about ``record``."""
    params = SamplingParams(
        temperature=temperature,
        max_tokens=max_tokens,
        response_format=questions_format(count) if structured else None,
    )
    passage = passage_of(record, passage_limit)
    messages = [
        ChatMessage(role="system", content=QUESTION_SYSTEM),
        ChatMessage(role="user", content=questions_prompt(record, count, passage)),
    ]
    return GenerationRequest(messages=messages, params=params)


def answer_request(
    question: str, passage: str | None, *, model: str | None, temperature: float, max_tokens: int
) -> GenerationRequest:
    """Step 2: one request answering ``question`` (from ``passage`` when the record has one)."""
    if passage is None:
        messages = [
            ChatMessage(role="system", content=ANSWER_SYSTEM),
            ChatMessage(role="user", content=question),
        ]
    else:
        messages = [
            ChatMessage(role="system", content=GROUNDED_SYSTEM),
            ChatMessage(role="user", content=f"PASSAGE:\n\n{passage}\n\nEND PASSAGE\n\nQUESTION: {question}"),
        ]
    return GenerationRequest(
        messages=messages, params=SamplingParams(temperature=temperature, max_tokens=max_tokens), model=model
    )


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)\n?```", re.DOTALL)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def _from_json(text: str) -> list[str] | None:
    fenced = _FENCE.search(text)
    candidate = fenced.group(1) if fenced else text
    start = min((i for i in (candidate.find("{"), candidate.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    try:
        value, _ = json.JSONDecoder().raw_decode(candidate, start)
    except ValueError:
        return None
    if isinstance(value, dict):
        value = value.get("questions")
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, str)]


def parse_questions(text: str, *, limit: int, min_chars: int) -> list[str]:
    """The questions in a step-1 reply: the JSON list (``{"questions": [...]}`` or a bare list,
    fenced or not), else the lines that end with ``?`` (bullets and numbers stripped). Stripped,
    deduplicated (case-insensitively), shorter ones left out, at most ``limit``."""
    found = _from_json(text)
    if found is None:
        found = [_BULLET.sub("", line) for line in text.splitlines() if line.strip().endswith("?")]
    questions: list[str] = []
    seen: set[str] = set()
    for question in found:
        question = " ".join(question.split())
        folded = question.casefold()
        if len(question) < min_chars or folded in seen:
            continue
        seen.add(folded)
        questions.append(question)
        if len(questions) >= limit:
            break
    return questions
