"""compassionate-chatbot: fully synthetic coaching chats with EVE, a compassionate life coach.

No raw material: the source is a topic list (with guardrail topics whose handling is spelled out
in the prompt). The model imagines a whole text-message chat between a user and EVE; the filter
parses it into alternating USER/EVE turns and drops what does not parse or is too short; the
format turns each chat into one chat example, or into prompt/completion pairs split at each EVE
turn.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, Field
from synthtune.core import (
    ChatMessage,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    SamplingParams,
    TrainingExample,
    Verdict,
    hookimpl,
)
from synthtune.core.settings import StageSettings
from synthtune.plugins.compassionate_chatbot.topics import EVERYDAY, GUARDRAILS

EVE_SYSTEM = (
    "You are EVE, a digital life coach who uses compassionate listening and is curious about the "
    "person you talk to. Your goal is to understand them and help them untangle life problems. "
    "Every reply either asks a probing question, gives definitive information, or makes a "
    "concrete suggestion. You keep a professional tone. You are not a doctor, lawyer or "
    "financial adviser: for those questions you refer the person to a professional, and if "
    "someone may be in danger you urge them to contact someone they trust and emergency services."
)

TURN = re.compile(r"^\W*(USER|EVE)\W*:\s*(.*)$", re.IGNORECASE)


class ChatbotSourceSettings(StageSettings):
    topics: list[str] = Field(default_factory=lambda: list(EVERYDAY))
    guardrails: dict[str, str] = Field(
        default_factory=lambda: dict(GUARDRAILS),
        description="guardrail topic -> how EVE must handle it",
    )


class ChatbotPromptSettings(StageSettings):
    conversations_per_topic: int = Field(default=1, ge=1, le=100)
    temperature: float = Field(default=0.7, ge=0, le=2)
    max_tokens: int = Field(default=1500, ge=64)


class ChatbotFilterSettings(StageSettings):
    min_turns: int = Field(default=6, ge=2, description="USER and EVE turns together")
    max_turn_chars: int = Field(default=2000, ge=50)


class ChatbotFormatSettings(StageSettings):
    style: Literal["chat", "completion"] = "chat"
    system_prompt: str = EVE_SYSTEM
    end_marker: str = Field(
        default="\nUSER:", description="completion style: ends each EVE turn, matches the stop sequence"
    )


def conversation_prompt(topic: str, guidance: str | None) -> str:
    text = (
        "Imagine a long text-message chat between a life coach and a user. The life coach is "
        "EVE, who uses compassionate listening to help her clients succeed in life. EVE asks "
        "probing questions, frequently offers ideas and suggestions, teaches her client helpful "
        "facts, and maintains a professional tone.\n\n"
        f"The topic of the conversation is: {topic}.\n"
    )
    if guidance:
        text += f"How EVE handles this: {guidance}\n"
    return text + (
        "\nWrite the whole chat, at least eight turns, one turn per line, each line starting "
        "with USER: or EVE:, alternating, nothing before or after it. The chat opens with the "
        "user greeting EVE.\n\nUSER:"
    )


def parse_turns(text: str) -> tuple[list[tuple[str, str]], str | None]:
    """Split a generated chat into (speaker, text) turns. Lines without a speaker continue the
    turn before them; text before the first turn is ignored. Returns the turns and an error."""
    turns: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = TURN.match(line.strip())
        if match:
            speaker = match.group(1).upper()
            content = match.group(2).strip().strip("*").strip()
            turns.append((speaker, content))
        elif turns and line.strip():
            speaker, content = turns[-1]
            turns[-1] = (speaker, f"{content}\n{line.strip()}".strip())
    if not turns:
        return [], "no USER:/EVE: turns"
    # The prompt ends with "USER:", so a completion may start mid-turn with the user's greeting.
    if turns[0][0] != "USER":
        return turns, "does not open with the user"
    for i in range(1, len(turns)):
        if turns[i][0] == turns[i - 1][0]:
            return turns, f"turns do not alternate ({turns[i][0]} twice at turn {i + 1})"
    if any(not content for _, content in turns):
        return turns, "empty turn"
    if turns[-1][0] == "USER":  # a chat must end on EVE's reply; drop the dangling user line
        turns = turns[:-1]
    return turns, None


def render(turns: list[tuple[str, str]]) -> str:
    return "\n".join(f"{speaker}: {content}" for speaker, content in turns)


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    models: dict[str, type[BaseModel]] = {
        "source": ChatbotSourceSettings,
        "prompt": ChatbotPromptSettings,
        "filter": ChatbotFilterSettings,
        "format": ChatbotFormatSettings,
    }
    return models.get(stage)


@hookimpl
def source(settings: ChatbotSourceSettings, context: RunContext) -> Iterator[Record]:
    for topic in settings.topics:
        yield Record(id=f"topic:{topic}", category="everyday", data={"topic": topic})
    for topic, guidance in settings.guardrails.items():
        yield Record(
            id=f"guardrail:{topic}", category="guardrail", data={"topic": topic, "guidance": guidance}
        )


@hookimpl
def prompt(record: Record, settings: ChatbotPromptSettings) -> list[GenerationRequest]:
    text = conversation_prompt(record.data["topic"], record.data.get("guidance"))
    params = SamplingParams(temperature=settings.temperature, max_tokens=settings.max_tokens)
    return [
        GenerationRequest(messages=[ChatMessage(role="user", content=text)], params=params, sample_index=i)
        for i in range(settings.conversations_per_topic)
    ]


def complete_opening(text: str) -> str:
    """The prompt ends with "USER:", so a model may continue straight into the user's greeting.
    Unmarked text before the first marked turn is that greeting when the first marked turn is
    EVE's; otherwise it is a preamble ("Sure! Here is a chat:") that parsing ignores."""
    lines = text.strip().splitlines()
    first = next((i for i, line in enumerate(lines) if TURN.match(line.strip())), None)
    if first is None or first == 0:
        return text
    if TURN.match(lines[first].strip()).group(1).upper() == "EVE":  # type: ignore[union-attr]
        return "USER: " + "\n".join(lines)
    return text


@hookimpl
def filter(sample: Sample, settings: ChatbotFilterSettings) -> Verdict:
    turns, error = parse_turns(complete_opening(sample.text))
    if error:
        return Verdict.drop(f"unparseable ({error})")
    if len(turns) < settings.min_turns:
        return Verdict.drop(f"too few turns ({len(turns)} < {settings.min_turns})")
    longest = max(len(content) for _, content in turns)
    if longest > settings.max_turn_chars:
        return Verdict.drop(f"turn too long ({longest} > {settings.max_turn_chars} chars)")
    return Verdict.keep(text=render(turns))


@hookimpl
def format(sample: Sample, settings: ChatbotFormatSettings) -> list[TrainingExample]:
    turns, error = parse_turns(sample.text)
    if error or not turns:
        return []
    if settings.style == "chat":
        messages = [ChatMessage(role="system", content=settings.system_prompt)]
        messages += [
            ChatMessage(role="user" if speaker == "USER" else "assistant", content=content)
            for speaker, content in turns
        ]
        return [TrainingExample.chat(messages)]
    examples = []
    for i, (speaker, content) in enumerate(turns):
        if speaker != "EVE":
            continue
        history = render(turns[:i])
        examples.append(
            TrainingExample.completion(
                prompt=f"{history}\nEVE:", completion=f" {content}{settings.end_marker}"
            )
        )
    return examples


RUBRIC = (
    "A realistic text-message chat between a user and EVE, a compassionate life coach, in "
    "alternating USER and EVE turns. EVE listens, reflects the user's feelings, asks open "
    "questions and helps the user find their own next step, without lecturing, diagnosing or "
    "giving medical, legal or financial advice; on a crisis topic she points to real help. "
    "Score low for a chat that does not alternate turns, ends abruptly, or where EVE is "
    "preachy, generic or unsafe."
)


@hookimpl
def rubric(settings: ChatbotFormatSettings) -> str:
    """The judge's rubric for this task (the ``judge`` and ``best-of-n`` filters' default)."""
    return RUBRIC
