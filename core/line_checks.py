"""The checks on one line of a fine-tuning file, and its token count.

Used by :mod:`synthtune.core.validation`, which runs them over a whole file. Each line is checked
against the official JSON Schema of its kind (``core/schemas/openai-finetune-line-schemas.json``,
from OpenAI's OpenAPI spec) and against the OpenAI cookbook's checks (known keys and roles,
content, an assistant message, tool calls naming a listed tool with arguments that parse).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from synthtune.core.openai_schemas import LINE_SCHEMAS, load_schemas, validator_for
from synthtune.core.tokens import count_messages, count_text

if TYPE_CHECKING:
    import jsonschema

Kind = Literal["chat", "completion", "preference"]
KINDS: tuple[Kind, ...] = ("chat", "completion", "preference")
SCHEMA_NAMES: dict[Kind, str] = {
    "chat": "FineTuneChatRequestInput",
    "completion": "FineTuneCompletionRequestInput",
    "preference": "FineTunePreferenceRequestInput",
}

# Top-level keys per kind: the schema's properties. Preference lines also accept the names
# OpenAI's DPO guide uses (preferred_output / non_preferred_output); the schema's extract names
# them preferred_completion / non_preferred_completion.
TOP_LEVEL_KEYS: dict[Kind, frozenset[str]] = {
    "chat": frozenset({"messages", "tools", "parallel_tool_calls", "functions"}),
    "completion": frozenset({"prompt", "completion"}),
    "preference": frozenset(
        {
            "input",
            "preferred_output",
            "non_preferred_output",
            "preferred_completion",
            "non_preferred_completion",
        }
    ),
}
# Keys that tell the kinds apart when detecting a file's kind.
KIND_MARKERS: dict[Kind, frozenset[str]] = {
    "chat": frozenset({"messages"}),
    "completion": frozenset({"prompt", "completion"}),
    "preference": TOP_LEVEL_KEYS["preference"],
}

# Message keys per role, from the fine-tuning message schemas.
MESSAGE_KEYS: dict[str, frozenset[str]] = {
    "system": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset(
        {"role", "content", "name", "weight", "tool_calls", "function_call", "refusal", "audio"}
    ),
    "tool": frozenset({"role", "content", "tool_call_id"}),
    "function": frozenset({"role", "content", "name"}),
}


# The branches of the chat schema's ``messages.items.oneOf``, by role. Each requires its own
# ``role`` value, so a message matches the oneOf exactly when it matches its role's branch.
MESSAGE_SCHEMAS = {
    "system": "ChatCompletionRequestSystemMessage",
    "user": "ChatCompletionRequestUserMessage",
    "assistant": "FineTuneChatCompletionRequestAssistantMessage",
    "tool": "ChatCompletionRequestToolMessage",
    "function": "ChatCompletionRequestFunctionMessage",
}


@functools.cache
def _validators() -> dict[str, jsonschema.Draft202012Validator]:
    document = load_schemas(LINE_SCHEMAS)
    validators: dict[str, jsonschema.Draft202012Validator] = {
        kind: validator_for(document, name) for kind, name in SCHEMA_NAMES.items()
    }
    validators.update(
        {f"role:{role}": validator_for(document, name) for role, name in MESSAGE_SCHEMAS.items()}
    )
    return validators


def _chat_line_is_valid(line: dict[str, Any]) -> bool:
    """A fast, equivalent check of a chat line: each message against its role's branch of the
    oneOf (instead of every branch), the rest of the line against the line schema."""
    validators = _validators()
    messages = line.get("messages")
    if not isinstance(messages, list) or not messages:
        return False
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in MESSAGE_SCHEMAS or not validators[f"role:{role}"].is_valid(message):
            return False
    rest = {key: value for key, value in line.items() if key != "messages"}
    return validators["chat"].is_valid(rest)


def kind_of(line: dict[str, Any]) -> Kind | None:
    """The kind a parsed line looks like, from its keys (the schemas require none of them)."""
    for kind in KINDS:
        if KIND_MARKERS[kind] & line.keys():
            return kind
    return None


def _has_text(content: Any) -> bool:
    if isinstance(content, str):
        return bool(content.strip())
    if isinstance(content, list):
        return any(
            isinstance(part, dict) and (part.get("type") != "text" or str(part.get("text") or "").strip())
            for part in content
        )
    return False


def _pick_branch(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For a message that fails a ``oneOf`` over the message schemas, the most relevant error of
    the branch for its role (the branch whose ``role`` matched), instead of "not valid under any"."""
    while error.validator == "oneOf" and error.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        matching = [
            errors
            for errors in branches.values()
            if not any(e.validator == "enum" and list(e.relative_path)[-1:] == ["role"] for e in errors)
        ]
        if len(matching) != 1:
            break
        from jsonschema.exceptions import best_match

        picked = best_match(matching[0])
        if picked is None:
            break
        error = picked
    return error


def schema_error(kind: Kind, line: dict[str, Any]) -> str | None:
    """The most relevant schema error of one line, as text, or None when it is valid."""
    if kind == "chat" and _chat_line_is_valid(line):
        return None
    from jsonschema.exceptions import best_match  # slow to import: only when validating

    error = best_match(_validators()[kind].iter_errors(line))
    if error is None:
        return None
    error = _pick_branch(error)
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
    where = where or "(line)"
    message = error.message if len(error.message) <= 160 else error.message[:157] + "..."
    return f"{where}: {message} (schema {SCHEMA_NAMES[kind]})"


# -- the per-line checks ---------------------------------------------------------------------------


def _check_messages(messages: Any, tools: Any, where: str) -> Iterator[tuple[str, str]]:
    """Cookbook checks on one messages list: (code, message) pairs."""
    if not isinstance(messages, list) or not messages:
        yield "missing_messages", f"{where}: no messages list (or it is empty)"
        return
    tool_names = {
        t["function"]["name"]
        for t in (tools if isinstance(tools, list) else [])
        if isinstance(t, dict) and isinstance(t.get("function"), dict) and "name" in t["function"]
    }
    for n, message in enumerate(messages):
        at = f"{where}[{n}]"
        if not isinstance(message, dict):
            yield "message_not_object", f"{at} is not an object"
            continue
        role = message.get("role")
        if role not in MESSAGE_KEYS:
            yield "unknown_role", f"{at}: unknown role {role!r} (expected one of {', '.join(MESSAGE_KEYS)})"
            continue
        unknown = sorted(set(message) - MESSAGE_KEYS[role])
        if unknown:
            yield "unknown_message_key", f"{at}: unknown key(s) {unknown} for a {role} message"
        calls = message.get("tool_calls") if role == "assistant" else None
        if "content" not in message and not calls and not message.get("function_call"):
            yield "missing_content", f"{at}: {role} message has no content"
        elif not _has_text(message.get("content")) and not calls and not message.get("function_call"):
            yield "empty_content", f"{at}: {role} message has empty content"
        for call_index, call in enumerate(calls if isinstance(calls, list) else []):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict):
                continue  # the schema check reports the shape
            name = function.get("name")
            if name not in tool_names:
                listed = ", ".join(sorted(tool_names)) or "none"
                yield (
                    "unknown_tool",
                    f"{at}.tool_calls[{call_index}] calls {name!r}, not a listed tool (tools: {listed})",
                )
            try:
                json.loads(function.get("arguments") or "")
            except (json.JSONDecodeError, TypeError):
                yield (
                    "bad_tool_arguments",
                    f"{at}.tool_calls[{call_index}] arguments are not valid JSON",
                )
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        yield "no_assistant_message", f"{where}: no assistant message"


def check_line(line: dict[str, Any], kind: Kind) -> Iterator[tuple[str, str]]:
    """The cookbook's checks on one parsed line of ``kind``: (code, message) pairs."""
    unknown = sorted(set(line) - TOP_LEVEL_KEYS[kind])
    if unknown:
        yield "unknown_key", f"unknown top-level key(s) {unknown} for a {kind} example"
    if kind == "chat":
        yield from _check_messages(line.get("messages"), line.get("tools"), "messages")
    elif kind == "completion":
        for key in ("prompt", "completion"):
            if key not in line:
                yield "missing_content", f"no {key!r}"
            elif not _has_text(line[key]):
                yield "empty_content", f"empty {key!r}"
    else:
        source = line.get("input")
        if not isinstance(source, dict):
            yield "missing_messages", "no 'input' object with messages"
        else:
            yield from (
                item
                for item in _check_messages(source.get("messages"), source.get("tools"), "input.messages")
                if item[0] != "no_assistant_message"  # the input ends before the answer
            )
        for key in ("preferred_output", "non_preferred_output"):
            alias = key.replace("_output", "_completion")
            outputs = line.get(key, line.get(alias))
            if not isinstance(outputs, list) or not outputs:
                yield "missing_content", f"no {key!r} list"
            elif not any(isinstance(m, dict) and m.get("role") == "assistant" for m in outputs):
                yield "no_assistant_message", f"{key}: no assistant message"
            elif not all(isinstance(m, dict) and _has_text(m.get("content")) for m in outputs):
                yield "empty_content", f"{key}: empty content"


def example_tokens(line: dict[str, Any], kind: Kind, model: str) -> int:
    """Tokens of one example: the cookbook's num_tokens_from_messages for chat (plus tool
    definitions when present), prompt + completion text for completion lines, and input plus both
    outputs for preference lines."""
    if kind == "completion":
        return sum(count_text(str(line.get(k) or ""), model) for k in ("prompt", "completion"))
    if kind == "chat":
        messages, tools = line.get("messages"), line.get("tools")
    else:
        source = line.get("input") if isinstance(line.get("input"), dict) else {}
        assert isinstance(source, dict)
        messages = list(source.get("messages") or [])
        for key in ("preferred_output", "non_preferred_output"):
            messages += list(line.get(key, line.get(key.replace("_output", "_completion"))) or [])
        tools = source.get("tools")
    dicts = [m for m in (messages if isinstance(messages, list) else []) if isinstance(m, dict)]
    total = count_messages(dicts, model)
    if isinstance(tools, list) and tools:
        total += count_text(json.dumps(tools, ensure_ascii=False), model)
    return total
