"""haiku: season x subject haiku, kept only when the model answers with exactly three lines."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

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

SEASONS = ["spring", "summer", "autumn", "winter"]
SUBJECTS = ["a river", "an old cat", "the city at night", "first snow", "a lost key"]
SYSTEM = "You write haiku: three short lines, no title."


class HaikuSourceSettings(StageSettings):
    seasons: list[str] = Field(default_factory=lambda: list(SEASONS), min_length=1)
    subjects: list[str] = Field(default_factory=lambda: list(SUBJECTS), min_length=1)


class HaikuPromptSettings(StageSettings):
    temperature: float = Field(default=0.9, ge=0, le=2)
    max_tokens: int = Field(default=60, ge=16)


class HaikuFilterSettings(StageSettings):
    lines: int = Field(default=3, ge=1)
    max_line_chars: int = Field(default=60, ge=1)


class HaikuFormatSettings(StageSettings):
    system_prompt: str = SYSTEM


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {
        "source": HaikuSourceSettings,
        "prompt": HaikuPromptSettings,
        "filter": HaikuFilterSettings,
        "format": HaikuFormatSettings,
    }.get(stage)


@hookimpl
def register_presets(register: Callable[..., None]) -> None:
    register(Path(__file__).parent / "presets" / "haiku.toml")


@hookimpl
def source(settings: HaikuSourceSettings, context: RunContext) -> Iterator[Record]:
    for season, subject in itertools.product(settings.seasons, settings.subjects):
        yield Record(
            id=f"{season}/{subject}".replace(" ", "-"),
            category=season,
            data={"season": season, "text": subject},
        )


@hookimpl
def prompt(record: Record, settings: HaikuPromptSettings, context: RunContext) -> list[GenerationRequest]:
    topic = f"{record.data['text']} in {record.data['season']}"
    return [
        GenerationRequest(
            messages=[
                ChatMessage(role="system", content=SYSTEM),
                ChatMessage(role="user", content=f"Write a haiku about {topic}."),
            ],
            params=SamplingParams(temperature=settings.temperature, max_tokens=settings.max_tokens),
        )
    ]


@hookimpl
def filter(sample: Sample, settings: HaikuFilterSettings, context: RunContext) -> Verdict:
    lines = [line.strip() for line in sample.text.strip().splitlines() if line.strip()]
    if len(lines) != settings.lines:
        return Verdict.drop(f"not {settings.lines} lines ({len(lines)})")
    if any(len(line) > settings.max_line_chars for line in lines):
        return Verdict.drop("line too long")
    return Verdict.keep(text="\n".join(lines))


@hookimpl
def format(sample: Sample, settings: HaikuFormatSettings, context: RunContext) -> list[TrainingExample]:
    topic = f"{sample.record.data['text']} in {sample.record.data['season']}"
    return [
        TrainingExample.chat(
            [
                ChatMessage(role="system", content=settings.system_prompt),
                ChatMessage(role="user", content=topic),
                ChatMessage(role="assistant", content=sample.text),
            ]
        )
    ]
