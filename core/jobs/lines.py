"""Checking a dataset file against a hosted provider's line format before anything is uploaded.

Providers take OpenAI-style chat lines (``{"messages": [...]}``) and OpenAI-style preference lines
(``{"input": {"messages": [...]}, "preferred_output": [assistant], "non_preferred_output":
[assistant]}``), each with its own limits (roles, alternation, extra keys, minimum examples).
A :class:`LineRules` states them; :func:`check_file` returns the kind of the file and the
examples counted, or raises :class:`DatasetRejected` naming the file, the line and the problem.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synthtune.core.errors import SynthtuneError

Kind = Literal["chat", "preference"]


class DatasetRejected(SynthtuneError):
    """The dataset does not fit the provider's format; nothing was uploaded (exit code 1)."""


@dataclass(frozen=True)
class LineRules:
    """A provider's rules for dataset lines (each rule cites where it was read)."""

    provider: str
    min_examples: int
    roles: tuple[str, ...] = ("system", "user", "assistant")
    message_keys: frozenset[str] = frozenset({"role", "content"})
    chat_keys: frozenset[str] = frozenset({"messages"})
    input_keys: frozenset[str] = frozenset({"messages"})
    alternate: bool = False  # after an optional system message, user/assistant must alternate
    weight: bool = False  # messages may carry "weight": 0 or 1


class _Bad(Exception):
    pass


def _messages(value: Any, rules: LineRules, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise _Bad(f"{where} must be a non-empty list of messages")
    previous: str | None = None
    for index, message in enumerate(value):
        at = f"{where}[{index}]"
        if not isinstance(message, dict):
            raise _Bad(f"{at} is not an object")
        unknown = sorted(set(message) - rules.message_keys - ({"weight"} if rules.weight else set()))
        if unknown:
            raise _Bad(f"{at} has key(s) {unknown} that {rules.provider} does not take")
        role = message.get("role")
        if role not in rules.roles:
            raise _Bad(f"{at}.role {role!r} is not one of {', '.join(rules.roles)}")
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            raise _Bad(f"{at}.content must be a non-empty string")
        if "weight" in message and message["weight"] not in (0, 1):
            raise _Bad(f"{at}.weight must be 0 or 1")
        if role == "system" and index != 0:
            raise _Bad(f"{at}: a system message may only come first")
        if rules.alternate and previous is not None and role == previous:
            raise _Bad(f"{at}: after the system message, user and assistant turns must alternate")
        previous = role
    return value


def _chat(line: dict[str, Any], rules: LineRules) -> None:
    unknown = sorted(set(line) - rules.chat_keys)
    if unknown:
        raise _Bad(
            f"key(s) {unknown} are not taken by {rules.provider} (chat lines have {sorted(rules.chat_keys)})"
        )
    messages = _messages(line.get("messages"), rules, "messages")
    if not any(m["role"] == "assistant" for m in messages):
        raise _Bad("no assistant message")


def _preference(line: dict[str, Any], rules: LineRules) -> None:
    unknown = sorted(set(line) - {"input", "preferred_output", "non_preferred_output"})
    if unknown:
        raise _Bad(f"key(s) {unknown} are not taken by {rules.provider} in preference lines")
    given = line.get("input")
    if not isinstance(given, dict):
        raise _Bad("input must be an object with messages")
    extra = sorted(set(given) - rules.input_keys)
    if extra:
        raise _Bad(f"input has key(s) {extra} that {rules.provider} does not take")
    messages = _messages(given.get("messages"), rules, "input.messages")
    if messages[-1]["role"] == "assistant":
        raise _Bad("input.messages must not end with an assistant message")
    for key in ("preferred_output", "non_preferred_output"):
        value = line.get(key)
        if not isinstance(value, list) or len(value) != 1:
            raise _Bad(f"{key} must be a list of exactly one assistant message")
        (message,) = _messages(value, rules, key)
        if message["role"] != "assistant":
            raise _Bad(f"{key}[0].role must be 'assistant'")


def _numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line, streamed; unreadable files become DatasetRejected."""
    number = 0
    try:
        with path.open(encoding="utf-8") as handle:
            for number, raw in enumerate(handle, start=1):
                yield number, raw
    except UnicodeDecodeError:
        raise DatasetRejected(f"{path}: line {number + 1}: not UTF-8 text") from None
    except OSError as error:
        raise DatasetRejected(f"{path}: {error.strerror or error}") from None


def check_file(
    path: Path, rules: LineRules, expect: Kind | None = None, *, min_examples: int | None = None
) -> tuple[Kind, int]:
    """(kind, examples) of ``path`` under ``rules``; raise DatasetRejected on the first problem.

    The kind is the first line's (``preference`` when it has ``preferred_output``) unless
    ``expect`` is given; every line must be of that kind. Fewer than ``min_examples`` examples
    (default: the provider's minimum) is a problem too.
    """
    kind: Kind | None = expect
    count = 0
    for number, raw in _numbered_lines(path):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except json.JSONDecodeError as error:
            raise DatasetRejected(f"{path}: line {number}: not JSON ({error.msg})") from None
        if not isinstance(line, dict):
            raise DatasetRejected(f"{path}: line {number}: not a JSON object")
        mine: Kind = "preference" if "preferred_output" in line or "input" in line else "chat"
        if "prompt" in line or "completion" in line:
            raise DatasetRejected(
                f"{path}: line {number}: prompt/completion lines are not taken here; use chat "
                "lines (--set format.style=chat)"
            )
        kind = kind or mine
        if mine != kind:
            raise DatasetRejected(f"{path}: line {number}: a {mine} line in a {kind} file")
        try:
            (_preference if kind == "preference" else _chat)(line, rules)
        except _Bad as problem:
            raise DatasetRejected(f"{path}: line {number}: {problem} ({rules.provider} format)") from None
        count += 1
    if count < (rules.min_examples if min_examples is None else min_examples):
        raise DatasetRejected(
            f"{path}: {count} example(s); {rules.provider} needs at least {rules.min_examples}; "
            "nothing was uploaded"
        )
    return kind or "chat", count


def usable_validation(dataset: Any, rules: LineRules, kind: Kind) -> None:
    """Check ``dataset.valid`` (a :class:`~synthtune.core.models.DatasetFiles`) against
    ``rules``; one with fewer examples than the provider takes is left out, with a warning, and
    the job trains without it (a small run's seeded split can hold one or two lines)."""
    if dataset.valid is None:
        return
    _, count = check_file(dataset.valid, rules, expect=kind, min_examples=0)
    if count < rules.min_examples:
        logging.getLogger("synthtune").warning(
            "%s: %d example(s), fewer than the %d %s needs for a validation file: training without one",
            dataset.valid,
            count,
            rules.min_examples,
            rules.provider,
        )
        dataset.valid = None
