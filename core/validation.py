"""Fine-tuning file validation: the official line schemas plus the OpenAI cookbook's checks.

Every line of a JSONL file is checked against the JSON Schema of its kind (chat, prompt/completion
or preference; ``core/schemas/openai-finetune-line-schemas.json``, from OpenAI's OpenAPI spec) and
against the checks of the OpenAI cookbook's "Data preparation and analysis for chat model
fine-tuning": JSON objects only, known top-level keys, a ``messages`` list, known roles and message
keys, non-empty content, an assistant message, tool calls that name a listed tool with arguments
that parse, one kind per file, no example over the model's token limit, at least 10 examples.
Those are errors. Missing system messages and token-count outliers are warnings.

The report also carries token statistics (tiktoken, the model's encoding, counted as the
cookbook's ``num_tokens_from_messages``) and the training cost estimate: billed tokens (each
example capped at the token limit) x epochs x the model's training price, with OpenAI's ``auto``
epoch default emulated as the cookbook does.
"""

from __future__ import annotations

import functools
import json
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

import jsonschema
from jsonschema.exceptions import best_match
from pydantic import BaseModel, Field
from synthtune.core.errors import ConfigError
from synthtune.core.pricing import price_table
from synthtune.core.testing import LINE_SCHEMAS, load_schemas, validator_for
from synthtune.core.tokens import base_model, count_messages, count_text

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

# Maximum tokens per training example, by model (exact name or longest prefix; fine-tuned
# ``ft:BASE:...`` names use their base). From OpenAI's fine-tuning model table ("training example
# context length"); models not listed get the cookbook's 16,385. Override with ``max_tokens``.
EXAMPLE_TOKEN_LIMITS: dict[str, int] = {
    "gpt-3.5-turbo": 16_385,
    "gpt-4o": 65_536,
    "gpt-4o-mini": 65_536,
    "gpt-4.1": 65_536,
    "gpt-4.1-mini": 65_536,
    "gpt-4.1-nano": 65_536,
}
DEFAULT_EXAMPLE_TOKEN_LIMIT = 16_385
MIN_EXAMPLES = 10
# An example this many times the median token count is reported as an outlier.
OUTLIER_FACTOR = 4.0

# OpenAI's default when n_epochs is "auto", as the cookbook emulates it.
TARGET_EPOCHS = 3
MIN_TARGET_EXAMPLES = 100
MAX_TARGET_EXAMPLES = 25_000
MIN_DEFAULT_EPOCHS = 1
MAX_DEFAULT_EPOCHS = 25


class Issue(BaseModel):
    """One finding. ``line`` is 1-based; ``None`` for findings about the whole file."""

    level: Literal["error", "warning"]
    code: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.message} [{self.code}]"


class TokenStats(BaseModel):
    """Tokens per example: count, min, median, p90, max and total."""

    examples: int = 0
    min: int = 0
    median: float = 0.0
    p90: int = 0
    max: int = 0
    total: int = 0

    @classmethod
    def of(cls, counts: list[int]) -> TokenStats:
        if not counts:
            return cls()
        ordered = sorted(counts)
        p90 = ordered[min(len(ordered) - 1, max(0, -(-9 * len(ordered) // 10) - 1))]
        return cls(
            examples=len(ordered),
            min=ordered[0],
            median=float(statistics.median(ordered)),
            p90=p90,
            max=ordered[-1],
            total=sum(ordered),
        )


class ValidationReport(BaseModel):
    """What :func:`validate_file` found."""

    path: str
    model: str
    kind: Kind | None = None
    lines: int = 0
    examples: int = 0
    token_limit: int
    issues: list[Issue] = Field(default_factory=list)
    tokens: TokenStats = Field(default_factory=TokenStats)
    example_tokens: list[int] = Field(default_factory=list, description="per line, 0 when unparsed")
    epochs: int = 0
    epochs_auto: bool = True
    dataset_tokens: int = Field(default=0, description="tokens per epoch, each example capped at the limit")
    billed_tokens: int = Field(default=0, description="dataset_tokens x epochs")
    cost_usd: float | None = None

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors


# -- helpers ---------------------------------------------------------------------------------------


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
    validators = {kind: validator_for(document, name) for kind, name in SCHEMA_NAMES.items()}
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


def token_limit(model: str) -> int:
    """The per-example token limit for ``model`` (see :data:`EXAMPLE_TOKEN_LIMITS`)."""
    name = base_model(model)
    if name in EXAMPLE_TOKEN_LIMITS:
        return EXAMPLE_TOKEN_LIMITS[name]
    prefixes = [known for known in EXAMPLE_TOKEN_LIMITS if name.startswith(known + "-")]
    return EXAMPLE_TOKEN_LIMITS[max(prefixes, key=len)] if prefixes else DEFAULT_EXAMPLE_TOKEN_LIMIT


def auto_epochs(examples: int) -> int:
    """The epochs OpenAI picks for ``n_epochs="auto"``, as the cookbook emulates it."""
    if examples <= 0:
        return TARGET_EPOCHS
    if examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_DEFAULT_EPOCHS, MIN_TARGET_EXAMPLES // examples)
    if examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(MIN_DEFAULT_EPOCHS, MAX_TARGET_EXAMPLES // examples)
    return TARGET_EPOCHS


def kind_of(line: dict[str, Any]) -> Kind | None:
    """The kind a parsed line looks like, from its keys (the schemas require none of them)."""
    for kind in KINDS:
        if KIND_MARKERS[kind] & line.keys():
            return kind
    return None


def detect_kind(path: Path) -> Kind | None:
    """The kind of the first line of ``path`` that parses and shows a kind."""
    for text in _read_lines(path):
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict) and (kind := kind_of(line)) is not None:
            return kind
    return None


def _read_lines(path: Path) -> Iterator[str]:
    try:
        with path.open(encoding="utf-8") as handle:
            yield from (raw.rstrip("\n").rstrip("\r") for raw in handle)
    except FileNotFoundError:
        raise ConfigError(f"no such file: {path}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror or error}") from None


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
        picked = best_match(matching[0])
        if picked is None:
            break
        error = picked
    return error


def _schema_error(kind: Kind, line: dict[str, Any]) -> str | None:
    if kind == "chat" and _chat_line_is_valid(line):
        return None
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


def _check_line(line: dict[str, Any], kind: Kind) -> Iterator[tuple[str, str]]:
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


def _tokens(line: dict[str, Any], kind: Kind, model: str) -> int:
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


# -- the file --------------------------------------------------------------------------------------


def validate_lines(
    lines: Iterable[str],
    *,
    model: str,
    kind: Kind | None = None,
    epochs: int | None = None,
    max_tokens: int | None = None,
    path: str = "-",
) -> ValidationReport:
    """Validate JSONL text lines for fine-tuning ``model``.

    ``kind`` forces the example kind (default: the kind of the first valid line); ``epochs`` is the
    planned number of epochs (default: OpenAI's ``auto``); ``max_tokens`` overrides the model's
    per-example token limit. Returns a :class:`ValidationReport`; it never raises on bad data.
    """
    limit = max_tokens or token_limit(model)
    report = ValidationReport(path=path, model=model, kind=kind, token_limit=limit)
    issues = report.issues
    counts: list[int] = []
    per_line: list[int] = []
    no_system: list[int] = []

    def error(number: int | None, code: str, message: str) -> None:
        issues.append(Issue(level="error", code=code, message=message, line=number))

    for number, text in enumerate(lines, start=1):
        report.lines = number
        per_line.append(0)
        if not text.strip():
            error(number, "invalid_json", "empty line")
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError as exc:
            error(number, "invalid_json", f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        if not isinstance(line, dict):
            error(number, "not_object", f"a JSON {type(line).__name__}, not an object")
            continue
        seen = kind_of(line)
        if report.kind is None and seen is not None:
            report.kind = seen
        file_kind = report.kind or "chat"
        if seen is not None and seen != file_kind:
            error(number, "mixed_kinds", f"a {seen} example in a {file_kind} file")
            continue
        report.examples += 1
        for code, message in _check_line(line, file_kind):
            error(number, code, message)
        schema = _schema_error(file_kind, line)
        if schema is not None:
            error(number, "schema", schema)
        tokens = _tokens(line, file_kind, model)
        per_line[-1] = tokens
        counts.append(tokens)
        if tokens > limit:
            error(number, "too_many_tokens", f"{tokens} tokens, over the {limit}-token limit of {model}")
        messages = line.get("messages") if file_kind == "chat" else (line.get("input") or {}).get("messages")
        if (
            file_kind != "completion"
            and isinstance(messages, list)
            and not any(isinstance(m, dict) and m.get("role") == "system" for m in messages)
        ):
            no_system.append(number)

    if report.examples < MIN_EXAMPLES:
        error(None, "too_few_examples", f"{report.examples} examples; OpenAI needs at least {MIN_EXAMPLES}")
    for number in no_system:
        issues.append(
            Issue(level="warning", code="no_system_message", message="no system message", line=number)
        )
    report.tokens = TokenStats.of(counts)
    report.example_tokens = per_line
    median = report.tokens.median
    if len(counts) >= 5 and median > 0:
        for number, tokens in enumerate(per_line, start=1):
            if tokens > OUTLIER_FACTOR * median:
                issues.append(
                    Issue(
                        level="warning",
                        code="outlier",
                        message=f"{tokens} tokens, {tokens / median:.1f}x the median ({median:g})",
                        line=number,
                    )
                )
    issues.sort(key=lambda i: (i.level != "error", i.line if i.line is not None else 0))
    report.epochs_auto = epochs is None
    report.epochs = epochs if epochs is not None else auto_epochs(report.examples)
    report.dataset_tokens = sum(min(limit, c) for c in counts)
    report.billed_tokens = report.dataset_tokens * report.epochs
    report.cost_usd = price_table().training_cost(model, report.billed_tokens)
    return report


def validate_file(
    path: Path,
    *,
    model: str,
    kind: Kind | None = None,
    epochs: int | None = None,
    max_tokens: int | None = None,
) -> ValidationReport:
    """Validate a fine-tuning JSONL file; see :func:`validate_lines`. A missing or unreadable file
    raises :class:`ConfigError`."""
    return validate_lines(
        _read_lines(Path(path)), model=model, kind=kind, epochs=epochs, max_tokens=max_tokens, path=str(path)
    )


def summary_lines(report: ValidationReport, max_errors: int = 50) -> list[str]:
    """A human-readable summary: errors one per line (up to ``max_errors``), warnings grouped by
    kind, token statistics and the cost estimate."""
    out = [f"{report.path}: {report.examples} {report.kind or 'unknown-kind'} examples, model {report.model}"]
    errors = report.errors
    for issue in errors[:max_errors]:
        out.append(f"  error   {issue}")
    if len(errors) > max_errors:
        out.append(f"  ... and {len(errors) - max_errors} more errors")
    grouped: Counter[str] = Counter(i.code for i in report.warnings)
    for code, n in sorted(grouped.items()):
        numbers = [str(i.line) for i in report.warnings if i.code == code and i.line is not None]
        shown = ", ".join(numbers[:10]) + (", ..." if len(numbers) > 10 else "")
        sample = next(i.message for i in report.warnings if i.code == code)
        out.append(f"  warning {code}: {n} example(s) (lines {shown}); e.g. {sample}")
    t = report.tokens
    out.append(
        f"  tokens  per example min {t.min}  median {t.median:g}  p90 {t.p90}  max {t.max}  "
        f"total {t.total}  (limit {report.token_limit})"
    )
    epochs = f"{report.epochs} epochs" + (" (auto)" if report.epochs_auto else "")
    cost = f"~${report.cost_usd:.2f}" if report.cost_usd is not None else "unknown (no training price)"
    out.append(
        f"  cost    {report.dataset_tokens} tokens x {epochs} = {report.billed_tokens} billed tokens: {cost}"
    )
    verdict = "invalid" if errors else "valid"
    out.append(f"  {verdict}: {len(errors)} error(s), {len(report.warnings)} warning(s)")
    return out
