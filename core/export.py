"""Dataset exports for other trainers.

- ``openai``: the lines as synthtune writes them (chat ``messages``, ``prompt``/``completion`` or
  preference ``input``/``preferred_output``/``non_preferred_output``).
- ``trl``: TRL's dataset formats. Chat ``messages`` lines are TRL's conversational format as they
  are (also axolotl's ``chat_template`` format); prompt/completion lines are TRL's prompt-completion
  format as they are; preference lines become TRL's conversational preference format
  (``prompt`` messages, ``chosen`` and ``rejected`` assistant messages).
- ``sharegpt``: ``{"conversations": [{"from": "system|human|gpt", "value": ...}]}``; tool calls
  become ``function_call`` turns (their JSON) and tool results ``observation`` turns, as
  LLaMA-Factory reads them. Chat and prompt/completion only.
- ``alpaca``: ``{"instruction", "input", "output"}`` (plus ``system`` when the example has one)
  for single-turn examples: the user message is the instruction, ``input`` is empty. Multi-turn
  and tool-using examples cannot be expressed and are skipped (and counted).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from synthtune.core.errors import ConfigError

Format = Literal["openai", "trl", "sharegpt", "alpaca"]
FORMATS: tuple[Format, ...] = ("openai", "trl", "sharegpt", "alpaca")
SHAREGPT_ROLES = {"system": "system", "user": "human", "assistant": "gpt", "tool": "observation"}

JsonDict = dict[str, Any]


class Skip(Exception):
    """This example cannot be expressed in the target format."""


def text_of(content: Any) -> str:
    """A message's text: the string, or the text parts of a content list joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _messages(line: JsonDict) -> list[JsonDict]:
    if "messages" in line:
        return list(line["messages"])
    if "prompt" in line:
        return [
            {"role": "user", "content": line["prompt"]},
            {"role": "assistant", "content": line.get("completion", "")},
        ]
    raise Skip("not a chat or prompt/completion example")


def to_trl(line: JsonDict) -> JsonDict:
    if "input" in line:
        chosen = line.get("preferred_output", line.get("preferred_completion"))
        rejected = line.get("non_preferred_output", line.get("non_preferred_completion"))
        return {"prompt": line["input"].get("messages", []), "chosen": chosen, "rejected": rejected}
    return line


def to_sharegpt(line: JsonDict) -> JsonDict:
    turns = []
    for message in _messages(line):
        role = message.get("role")
        calls = message.get("tool_calls")
        if role == "assistant" and calls:
            if text_of(message.get("content")).strip():
                turns.append({"from": "gpt", "value": text_of(message.get("content"))})
            for call in calls:
                function = call.get("function", {})
                arguments = function.get("arguments", "{}")
                try:
                    arguments = json.loads(arguments)
                except (TypeError, json.JSONDecodeError):
                    pass
                value = json.dumps({"name": function.get("name"), "arguments": arguments}, ensure_ascii=False)
                turns.append({"from": "function_call", "value": value})
            continue
        if role not in SHAREGPT_ROLES:
            raise Skip(f"role {role!r} has no ShareGPT equivalent")
        turns.append({"from": SHAREGPT_ROLES[role], "value": text_of(message.get("content"))})
    out: JsonDict = {"conversations": turns}
    if line.get("tools"):
        out["tools"] = json.dumps([t.get("function", t) for t in line["tools"]], ensure_ascii=False)
    return out


def to_alpaca(line: JsonDict) -> JsonDict:
    messages = _messages(line)
    system = [m for m in messages if m.get("role") == "system"]
    rest = [m for m in messages if m.get("role") != "system"]
    roles = [m.get("role") for m in rest]
    if roles != ["user", "assistant"] or len(system) > 1 or rest[1].get("tool_calls"):
        raise Skip("not a single-turn example")
    out: JsonDict = {
        "instruction": text_of(rest[0].get("content")),
        "input": "",
        "output": text_of(rest[1].get("content")),
    }
    if system:
        out["system"] = text_of(system[0].get("content"))
    return out


CONVERTERS = {"openai": lambda line: line, "trl": to_trl, "sharegpt": to_sharegpt, "alpaca": to_alpaca}


class ExportCounts:
    """How many lines were written and skipped (with the first reason)."""

    def __init__(self) -> None:
        self.written = 0
        self.skipped = 0
        self.reason: str | None = None


def convert(lines: Iterable[JsonDict], fmt: str, counts: ExportCounts) -> Iterator[JsonDict]:
    """Each line converted to ``fmt``; lines the format cannot express are counted and skipped."""
    if fmt not in CONVERTERS:
        raise ConfigError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    converter = CONVERTERS[fmt]
    for number, line in enumerate(lines, start=1):
        if fmt == "sharegpt" and "input" in line:
            raise ConfigError("sharegpt export takes chat or prompt/completion datasets, not preference ones")
        if fmt == "alpaca" and "input" in line:
            raise ConfigError("alpaca export takes chat or prompt/completion datasets, not preference ones")
        try:
            converted = converter(line)
        except Skip as reason:
            counts.skipped += 1
            counts.reason = counts.reason or str(reason)
            continue
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as error:
            # A line of the wrong shape ({"messages": "x"}): name it instead of a traceback.
            raise ConfigError(
                f"example {number}: not a fine-tuning line ({type(error).__name__}: {error}); "
                "`tune validate FILE` shows what is wrong"
            ) from None
        counts.written += 1
        yield converted
