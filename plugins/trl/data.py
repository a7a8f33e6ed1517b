"""Read a synthtune dataset file into the rows TRL's SFTTrainer takes.

Chat lines (``{"messages": [...]}``, optionally ``tools``) are TRL's *conversational* format and
pass through unchanged; prompt/completion lines are its *prompt-completion* format (loss on the
completion only). Preference lines (OpenAI's ``input``/``preferred_output``/
``non_preferred_output``, or TRL's own ``prompt``/``chosen``/``rejected``) become TRL's
conversational *preference* rows, for DPO. Plain Python, no heavy imports: the file is checked
before torch is loaded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Literal

from synthtune.core.errors import ConfigError
from synthtune.core.jsonl import iter_objects

Kind = Literal["chat", "completion", "preference"]


def _kind_of(line: dict[str, Any]) -> str:
    if "preferred_output" in line or "chosen" in line:
        return "preference"
    if "messages" in line:
        return "chat"
    if "prompt" in line and "completion" in line:
        return "completion"
    return "unknown"


def read_rows(path: Path) -> tuple[Kind, list[dict[str, Any]]]:
    """The rows of a JSONL dataset and its kind; a ConfigError names the first bad line."""
    if not path.is_file():
        raise ConfigError(f"dataset {path}: no such file")
    rows: list[dict[str, Any]] = []
    kind: str | None = None
    for number, line in iter_objects(path):
        line_kind = _kind_of(line)
        if line_kind == "unknown":
            raise ConfigError(
                f"dataset {path} line {number}: expected 'messages', 'prompt' and 'completion', or a "
                "preference pair"
            )
        if kind is None:
            kind = line_kind
        elif line_kind != kind:
            raise ConfigError(f"dataset {path} line {number}: a {line_kind} line in a {kind} file")
        rows.append(_row(line, line_kind, path, number))
    if kind is None:
        raise ConfigError(f"dataset {path}: empty")
    return kind, rows  # type: ignore[return-value]


def _preference_row(line: dict[str, Any], path: Path, number: int) -> dict[str, Any]:
    """TRL's conversational preference row (prompt messages, chosen and rejected replies)."""
    if "input" in line:
        prompt = line["input"].get("messages") if isinstance(line["input"], dict) else None
        chosen, rejected = line.get("preferred_output"), line.get("non_preferred_output")
    else:
        prompt, chosen, rejected = line.get("prompt"), line.get("chosen"), line.get("rejected")
    for name, value in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        if not isinstance(value, list) or not value or not all(isinstance(m, dict) for m in value):
            raise ConfigError(
                f"dataset {path} line {number}: preference {name} must be a non-empty list of messages"
            )
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def _row(line: dict[str, Any], kind: str, path: Path, number: int) -> dict[str, Any]:
    if kind == "preference":
        return _preference_row(line, path, number)
    if kind == "completion":
        if not isinstance(line["prompt"], str) or not isinstance(line["completion"], str):
            raise ConfigError(f"dataset {path} line {number}: prompt and completion must be strings")
        return {"prompt": line["prompt"], "completion": line["completion"]}
    messages = line["messages"]
    if not isinstance(messages, list) or not messages:
        raise ConfigError(f"dataset {path} line {number}: 'messages' must be a non-empty list")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        raise ConfigError(f"dataset {path} line {number}: no assistant message to learn from")
    # OpenAI's per-message `weight` has no TRL equivalent; arrow also needs one shape per column.
    row: dict[str, Any] = {
        "messages": [{k: v for k, v in m.items() if k != "weight"} for m in messages],
    }
    if "tools" in line:
        row["tools"] = line["tools"]
    return row


def file_digest(path: Path | None) -> str | None:
    """sha256 of a file's bytes (None for no file): part of a training job's fingerprint."""
    if path is None:
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
