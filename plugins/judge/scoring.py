"""The judge's pure parts: the request that asks for a score, and the tolerant reading of the reply.

A judge is asked for ``{"score": 1-10, "reason": "..."}`` (structured output where the endpoint
takes it; the generate plugin adapts the request to the server). Servers and models do not
always comply, so the reply is read tolerantly: a JSON object (in a code fence or amid prose), a
JSON number, or a bare number such as ``8``, ``8/10`` or ``Score: 8``. A reply with none of these,
or a score outside the scale, is unparseable: the filter drops the sample as
``judge-unparseable``, it never crashes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from synthtune.core.models import ChatMessage, GenerationRequest, SamplingParams

SCORE_MIN = 1
SCORE_MAX = 10

DEFAULT_RUBRIC = (
    "The answer does what the request asks, completely and accurately. It is well written, "
    "specific rather than generic, free of filler, refusals, apologies and meta-comments about "
    "being an AI, and it would be a good example for a model to learn from."
)

SYSTEM = (
    "You are a strict, consistent judge of training data for fine-tuning a language model. "
    "You grade one answer against a rubric and reply with JSON only."
)

INSTRUCTION = (
    "Grade the answer below against the rubric.\n\n"
    "RUBRIC:\n{rubric}\n\n"
    "THE REQUEST THE ANSWER WAS WRITTEN FOR:\n{request}\n\n"
    "THE ANSWER:\n{answer}\n\n"
    'Reply with one JSON object: {{"score": an integer from {low} (useless) to {high} (excellent), '
    '"reason": "one sentence saying why"}}.'
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": SCORE_MIN, "maximum": SCORE_MAX},
        "reason": {"type": "string"},
    },
    "required": ["score", "reason"],
    "additionalProperties": False,
}
RESPONSE_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {"name": "judgement", "schema": SCHEMA, "strict": True},
}


@dataclass(frozen=True)
class Judgement:
    """A judge's reading of one answer: a score on the 1-10 scale and the judge's reason."""

    score: float
    reason: str


def render_messages(messages: list[ChatMessage]) -> str:
    """A conversation as plain text for the judge (``ROLE: content``, one block per message)."""
    blocks = []
    for message in messages:
        content = message.content
        if isinstance(content, list):
            content = "".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
        blocks.append(f"{message.role.upper()}: {content or ''}".rstrip())
    return "\n\n".join(blocks)


def judge_request(
    messages: list[ChatMessage],
    answer: str,
    rubric: str,
    *,
    model: str | None,
    temperature: float,
    max_tokens: int,
    structured: bool,
) -> GenerationRequest:
    """The request that asks the judge to grade ``answer`` to the conversation ``messages``.

    Derived only from its inputs, so it is a stable cache key: a rerun finds the judgement in
    the run store."""
    prompt = INSTRUCTION.format(
        rubric=rubric.strip(),
        request=render_messages(messages),
        answer=answer,
        low=SCORE_MIN,
        high=SCORE_MAX,
    )
    params = SamplingParams(
        temperature=temperature,
        max_tokens=max_tokens,
        response_format=RESPONSE_FORMAT if structured else None,
    )
    return GenerationRequest(
        messages=[ChatMessage(role="system", content=SYSTEM), ChatMessage(role="user", content=prompt)],
        params=params,
        model=model,
    )


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)\n?```", re.DOTALL)
_NUMBER = re.compile(r"(?<![\w.])(-?\d+(?:\.\d+)?)(?:\s*(?:/|out of)\s*10\b)?")
_LABELLED = re.compile(r"\bscore\b\W{0,3}(-?\d+(?:\.\d+)?)", re.IGNORECASE)


def _objects(text: str) -> list[Any]:
    """Every JSON value that starts at a ``{`` in ``text`` (first ones first)."""
    decoder = json.JSONDecoder()
    found = []
    for match in re.finditer(r"\{", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        found.append(value)
    return found


def _score_of(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().split("/")[0])
        except ValueError:
            return None
    return None


def _in_scale(score: float | None) -> bool:
    return score is not None and SCORE_MIN <= score <= SCORE_MAX


def parse_judgement(text: str | None) -> Judgement | None:
    """The score and reason in a judge's reply, or ``None`` when the reply holds no score on the
    1-10 scale. Tolerant: JSON (fenced or amid prose, ``score``/``rating`` keys), a JSON number,
    or a bare number (``8``, ``8/10``, ``Score: 8``)."""
    if not text or not text.strip():
        return None
    stripped = text.strip()
    fenced = _FENCE.search(stripped)
    candidates = [fenced.group(1).strip()] if fenced else []
    candidates.append(stripped)
    for candidate in candidates:
        try:
            values = [json.loads(candidate)]
        except ValueError:
            values = _objects(candidate)
        for value in values:
            if isinstance(value, dict):
                for name in ("score", "rating", "grade"):
                    if name in value:
                        score = _score_of(value[name])
                        if _in_scale(score):
                            assert score is not None
                            reason = value.get("reason", value.get("explanation", ""))
                            return Judgement(score, str(reason or "").strip())
                        return None  # a score key with a value off the scale: not a guess
            else:
                score = _score_of(value)
                if _in_scale(score):
                    assert score is not None
                    return Judgement(score, "")
    labelled = _LABELLED.search(stripped)
    if labelled:
        score = float(labelled.group(1))
        return Judgement(score, _rest(stripped, labelled.end())) if _in_scale(score) else None
    first = _NUMBER.match(stripped)
    if first:  # a reply that starts with the number: "8", "8/10", "7 - clear and complete"
        score = float(first.group(1))
        return Judgement(score, _rest(stripped, first.end())) if _in_scale(score) else None
    return None


def _rest(text: str, start: int) -> str:
    """What follows the score in a free-text reply, as its reason."""
    return text[start:].strip(" \t\n.:-–—,;").strip()


def snippet(text: str | None, limit: int = 80) -> str:
    """The start of a reply on one line, for a drop reason."""
    line = " ".join((text or "").split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
