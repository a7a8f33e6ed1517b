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

import json
import statistics
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from synthtune.core.errors import ConfigError
from synthtune.core.line_checks import Kind, check_line, example_tokens, kind_of, schema_error
from synthtune.core.nesting import TooDeep, loads_json
from synthtune.core.pricing import price_table
from synthtune.core.spend import default_epochs
from synthtune.core.tokens import base_model

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
# OpenAI's default when n_epochs is "auto" is emulated by spend.default_epochs (the cookbook's rule).


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


def token_limit(model: str) -> int:
    """The per-example token limit for ``model`` (see :data:`EXAMPLE_TOKEN_LIMITS`)."""
    name = base_model(model)
    if name in EXAMPLE_TOKEN_LIMITS:
        return EXAMPLE_TOKEN_LIMITS[name]
    prefixes = [known for known in EXAMPLE_TOKEN_LIMITS if name.startswith(known + "-")]
    return EXAMPLE_TOKEN_LIMITS[max(prefixes, key=len)] if prefixes else DEFAULT_EXAMPLE_TOKEN_LIMIT


def detect_kind(path: Path) -> Kind | None:
    """The kind of the first line of ``path`` that parses and shows a kind."""
    for text in _read_lines(path):
        try:
            line = loads_json(text)
        except (json.JSONDecodeError, TooDeep):
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
            line = loads_json(text)
        except json.JSONDecodeError as exc:
            error(number, "invalid_json", f"invalid JSON: {exc.msg} (column {exc.colno})")
            continue
        except TooDeep as exc:
            error(number, "too_deep", str(exc))
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
        for code, message in check_line(line, file_kind):
            error(number, code, message)
        schema = schema_error(file_kind, line)
        if schema is not None:
            error(number, "schema", schema)
        tokens = example_tokens(line, file_kind, model)
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
    report.epochs = epochs if epochs is not None else default_epochs(report.examples)
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
