"""Checking the teacher's structured output: it parses, has every field, and is grounded.

Grounding is lexical, cheap and explainable: after lower-casing, dropping stop words and
folding simple English suffixes (``-s``, ``-es``, ``-ies``, ``-ed``, ``-ing``, ``-ly``), at least
``min_grounding`` of the answer's distinct content words must occur in the passage, and every
number in the answer must occur in the passage. This catches answers that drift off the passage
or invent figures; it cannot catch a wrong statement made of the passage's own words.
"""

from __future__ import annotations

import json
import re
from typing import Any

from synthtune.core import Verdict
from synthtune.plugins.agent_chat.prompt import FIELDS
from synthtune.plugins.agent_chat.settings import AgentFilterSettings

_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.DOTALL)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_PASSAGE_REFERENCE = re.compile(
    r"\b(?:the|this|that|above|given) (?:passage|text|article|excerpt|document|snippet)\b"
    r"|\baccording to the\b",
    re.IGNORECASE,
)
STOP_WORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    one two may might must shall us yes""".split()
)


def parse_example(text: str) -> tuple[dict[str, str] | None, str | None]:
    """The three fields of a teacher answer, or ``(None, reason)``. A markdown code fence around
    the JSON is tolerated (servers without structured output often add one)."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    try:
        data: Any = json.loads(body)
    except json.JSONDecodeError as error:
        return None, f"invalid JSON ({error.msg} at line {error.lineno} column {error.colno})"
    if not isinstance(data, dict):
        return None, f"invalid JSON (expected an object, got {type(data).__name__})"
    fields: dict[str, str] = {}
    for name in FIELDS:
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            problem = "absent" if name not in data else "empty" if isinstance(value, str) else "not a string"
            return None, f"missing field ({name}: {problem})"
        fields[name] = " ".join(value.split()) if name != "final_answer" else value.strip()
    return fields, None


def _stem(word: str) -> str:
    if len(word) <= 4 or word.isdigit():
        return word
    for suffix, replacement in (("ies", "y"), ("ing", ""), ("ed", ""), ("ly", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def content_words(text: str) -> set[str]:
    """Distinct stemmed words of ``text`` that carry meaning (no stop words, at least 3 letters,
    or any number)."""
    words = (w.casefold() for w in _WORD.findall(text))
    return {_stem(w) for w in words if w not in STOP_WORDS and (len(w) >= 3 or w.isdigit())}


def grounding(answer: str, passage: str) -> float:
    """The share of the answer's distinct content words that occur in the passage (1.0 when the
    answer has none)."""
    words = content_words(answer)
    if not words:
        return 1.0
    return len(words & content_words(passage)) / len(words)


def missing_numbers(answer: str, passage: str) -> list[str]:
    """Numbers in the answer that the passage does not contain (thousands separators ignored)."""
    known = {n.replace(",", "") for n in _NUMBER.findall(passage)}
    return [n for n in _NUMBER.findall(answer) if n.replace(",", "").rstrip(".") not in known]


def judge(text: str, passage: str, finish_reason: str | None, settings: AgentFilterSettings) -> Verdict:
    """Keep the example as canonical JSON, or drop it with the first problem found."""
    if finish_reason == "length":
        return Verdict.drop("truncated (hit max_tokens)")
    fields, problem = parse_example(text)
    if fields is None:
        return Verdict.drop(problem or "invalid JSON")
    if settings.reject_passage_references and _PASSAGE_REFERENCE.search(fields["question"]):
        return Verdict.drop(f"question refers to the passage ({fields['question'][:80]!r})")
    answer = fields["final_answer"]
    if not content_words(answer):
        return Verdict.drop("ungrounded answer (no content words)")
    if settings.check_numbers:
        invented = missing_numbers(answer, passage)
        if invented:
            return Verdict.drop(f"ungrounded answer (number {invented[0]} is not in the passage)")
    share = grounding(answer, passage)
    if share < settings.min_grounding:
        return Verdict.drop(
            f"ungrounded answer ({share:.0%} of its content words are in the passage, "
            f"< {settings.min_grounding:.0%})"
        )
    if not content_words(fields["search_query"]) & content_words(passage):
        return Verdict.drop(f"search query unrelated to the passage ({fields['search_query'][:60]!r})")
    return Verdict.keep(text=json.dumps(fields, ensure_ascii=False))
