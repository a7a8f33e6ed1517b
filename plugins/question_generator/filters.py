"""Cleaning a generated list into questions, one per line."""

from __future__ import annotations

import re

from synthtune.core import Verdict
from synthtune.plugins.question_generator.settings import QuestionFilterSettings

# A leading bullet or number: "- ", "* ", "•", "1. ", "2) ", "(3) ", "a. ", "Q1: ", "Q: ".
_MARKER = re.compile(r"^\s*(?:[-*+>–—]+\s+|[•·▪]\s*|\(?\d{1,3}[.):]\s+|\(?[a-zA-Z][.)]\s+|Q\d*[.:)]\s*)")
_EMPHASIS = re.compile(r"^(\*\*|__|\*|_)(.+)\1$")


def clean_line(line: str) -> str:
    """A line without bullets, numbering, surrounding emphasis or quotes."""
    text = line.strip()
    for _ in range(2):  # "1. **question**", "- 1) question" and similar doubled markers
        text = _MARKER.sub("", text, count=1).strip()
        emphasis = _EMPHASIS.match(text)
        if emphasis:
            text = emphasis.group(2).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1].strip()
    return " ".join(text.split())


def extract_questions(text: str, min_chars: int = 1) -> list[str]:
    """The distinct questions in ``text``, in order: lines that end with ``?`` once cleaned."""
    questions: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        question = clean_line(line)
        if not question.endswith("?") or len(question) < min_chars:
            continue
        key = question.casefold()
        if key in seen:
            continue
        seen.add(key)
        questions.append(question)
    return questions


def judge(text: str, settings: QuestionFilterSettings) -> Verdict:
    """Keep the questions one per line, or drop a sample with too few of them."""
    questions = extract_questions(text, settings.min_question_chars)
    if len(questions) < settings.min_questions:
        return Verdict.drop(f"too few questions ({len(questions)} < {settings.min_questions})")
    if settings.max_questions is not None:
        questions = questions[: settings.max_questions]
    return Verdict.keep(text="\n".join(questions))
