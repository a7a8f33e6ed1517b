"""A minimal task plugin for benchmarks: N synthetic records, one request each, keep all.

Its work per record is what a real task plugin's is (a record, a rendered request, a filter, a
chat example), so the benchmark measures the framework, not a task.
"""

from __future__ import annotations

from collections.abc import Iterator

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

SYSTEM = "You write complete, detailed plot outlines for films."
TOPICS = ["a lighthouse keeper", "a chess prodigy", "a retired astronaut", "a street musician"]


class BenchSourceSettings(StageSettings):
    count: int = Field(default=1000, ge=1)


class BenchPromptSettings(StageSettings):
    max_tokens: int = Field(default=500, ge=1)


def prompt_text(i: int) -> str:
    """About 400 characters, different for every record."""
    topic = TOPICS[i % len(TOPICS)]
    return (
        f"Story {i}: write a complete, detailed plot outline for a film about {topic}. Cover "
        "the setting, the main characters and what they want, the inciting incident, the rising "
        "conflict, the climax and the resolution, as flowing prose in several paragraphs, "
        "without headings or lists, and do not give the film a title line."
    )


def messages(i: int) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt_text(i)}]


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {"source": BenchSourceSettings, "prompt": BenchPromptSettings}.get(stage)


@hookimpl
def source(settings: BenchSourceSettings, context: RunContext) -> Iterator[Record]:
    for i in range(settings.count):
        yield Record(id=f"r{i:07d}", category=TOPICS[i % len(TOPICS)], data={"i": i})


@hookimpl
def prompt(record: Record, settings: BenchPromptSettings, context: RunContext) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            messages=[ChatMessage(**m) for m in messages(record.data["i"])],  # type: ignore[arg-type]
            params=SamplingParams(max_tokens=settings.max_tokens),
        )
    ]


@hookimpl
def filter(sample: Sample, settings: BaseModel, context: RunContext) -> Verdict:
    text = sample.text.strip()
    return Verdict.keep(text=text) if len(text) >= 10 else Verdict.drop("too short")


@hookimpl
def format(sample: Sample, settings: BaseModel, context: RunContext) -> list[TrainingExample]:
    return [
        TrainingExample.chat(
            [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": prompt_text(sample.record.data["i"])},
                {"role": "assistant", "content": sample.text},
            ]
        )
    ]


PRESET = """
name = "bench"
seed = 1
[source]
plugin = "bench"
[prompt]
plugin = "bench"
[generate]
plugin = "openai"
model = "gpt-4.1-mini"
[[filter]]
plugin = "bench"
[format]
plugin = "bench"
"""
