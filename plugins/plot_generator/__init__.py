"""plot-generator: detailed film plot outlines from genre x modifier x place x period.

The original tutorial walked the four lists in nested loops and stopped at 500 prompts, so its
dataset was mostly romance and had no science fiction. Here records are drawn so that every list
stays balanced at any count (each value used once per cycle, cycles reshuffled with the seed).
"""

from __future__ import annotations

import hashlib
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Literal

from pydantic import BaseModel, Field
from synthtune.core import (
    ChatMessage,
    Framing,
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

GENRES = [
    "romance & comedy",
    "crime & mystery",
    "action & adventure",
    "high fantasy",
    "science fiction",
    "horror & thriller",
]
MODIFIERS = [
    "tragic & heartwrenching",
    "gritty & dark",
    "lighthearted & uplifting",
    "suspenseful & tense",
    "whimsical & quirky",
    "epic & sweeping",
]
PLACES = [
    "France",
    "Japan",
    "England",
    "America",
    "South Africa",
    "India",
    "China",
    "Egypt",
    "Italy",
]
PERIODS = [
    "the Renaissance",
    "the 1920s",
    "the 1960s",
    "the 1990s",
    "the near future",
    "the distant future",
]
FIELDS = ("genre", "modifier", "place", "period")
SYSTEM = "You write complete, detailed plot outlines for films."


class PlotSourceSettings(StageSettings):
    genres: list[str] = Field(default_factory=lambda: list(GENRES), min_length=1)
    modifiers: list[str] = Field(default_factory=lambda: list(MODIFIERS), min_length=1)
    places: list[str] = Field(default_factory=lambda: list(PLACES), min_length=1)
    periods: list[str] = Field(default_factory=lambda: list(PERIODS), min_length=1)
    count: int | None = Field(default=None, ge=1, description="how many combinations; default all of them")


class PlotPromptSettings(StageSettings):
    samples_per_record: int = Field(default=1, ge=1, le=64)
    temperature: float = Field(default=1.0, ge=0, le=2)
    top_p: float = Field(default=1.0, ge=0, le=1)
    max_tokens: int = Field(default=1000, ge=16)


class PlotFilterSettings(StageSettings):
    min_chars: int = Field(default=1000, ge=0)
    drop_truncated: bool = Field(
        default=True, description="drop outlines cut off by max_tokens (finish_reason=length)"
    )


class PlotFormatSettings(StageSettings):
    style: Literal["chat", "completion"] = "chat"
    system_prompt: str = SYSTEM
    demarcator: str = "PLOT OUTLINE:"
    end_marker: str = "\n\nEND"


def balanced_combinations(settings: PlotSourceSettings, seed: int) -> Iterator[tuple[str, ...]]:
    """Distinct combinations, drawn so that every list stays balanced, reproducibly for a seed.

    Each value of a list is used once per cycle through that list (each cycle in a fresh seeded
    order), so its count differs from the other values' by at most one at every prefix: a
    ``--limit`` anywhere is balanced too. When every combination of the values left in the
    current cycles is already taken, balance gives way list by list (periods first, then places,
    then modifiers, never genres), taking the least-used values first.
    """
    lists = [settings.genres, settings.modifiers, settings.places, settings.periods]
    total = 1
    for values in lists:
        total *= len(values)
    rng = random.Random(seed)
    count = settings.count or total
    if count >= total:  # every combination: a seeded shuffle of all of them
        combos = list(itertools.product(*lists))
        rng.shuffle(combos)
        yield from combos
        return
    remaining: list[list[str]] = [[] for _ in lists]
    used: list[Counter[str]] = [Counter() for _ in lists]
    seen: set[tuple[str, ...]] = set()
    for _ in range(count):
        for i, values in enumerate(lists):
            if not remaining[i]:
                remaining[i] = rng.sample(values, len(values))
        combo = None
        for relaxed in range(len(lists)):  # 0: strict; 1: periods free; 2: +places; 3: +modifiers
            choices = [
                remaining[i] if i < len(lists) - relaxed else sorted(lists[i], key=used[i].__getitem__)
                for i in range(len(lists))
            ]
            combo = next((c for c in itertools.product(*choices) if c not in seen), None)
            if combo is not None:
                break
        if combo is None:  # only this close to exhausting the space
            combo = next(c for c in itertools.product(*lists) if c not in seen)
        for i, value in enumerate(combo):
            if value in remaining[i]:
                remaining[i].remove(value)
            used[i][value] += 1
        seen.add(combo)
        yield combo


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def entropy_line(seed: int, record_id: str, index: int) -> str:
    """A UUID that varies per record and sample but is the same on every run: it adds entropy
    to the prompt without breaking the request cache."""
    digest = hashlib.sha256(f"{seed}:{record_id}:{index}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def plot_prompt(fields: dict[str, str]) -> str:
    return (
        f"Write a complete, detailed plot outline for a {fields['genre']} film set in "
        f"{fields['place']} during {fields['period']}. The tone is {fields['modifier']}.\n\n"
        "Cover the whole story from beginning to end: the setting, the main characters and "
        "what they want, the inciting incident, the rising conflict, the climax and the "
        "resolution. Write it as flowing prose in several paragraphs, without headings or "
        "lists, and do not give the film a title line."
    )


def input_text(fields: dict[str, str]) -> str:
    return (
        f"Genre: {fields['genre']}\nLocation: {fields['place']}\n"
        f"Period: {fields['period']}\nModifier: {fields['modifier']}"
    )


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    models: dict[str, type[BaseModel]] = {
        "source": PlotSourceSettings,
        "prompt": PlotPromptSettings,
        "filter": PlotFilterSettings,
        "format": PlotFormatSettings,
    }
    return models.get(stage)


@hookimpl
def source(settings: PlotSourceSettings, context: RunContext) -> Iterator[Record]:
    for combo in balanced_combinations(settings, context.seed):
        fields = dict(zip(FIELDS, combo, strict=True))
        yield Record(id="/".join(_slug(v) for v in combo), category=fields["genre"], data=fields)


@hookimpl
def prompt(record: Record, settings: PlotPromptSettings, context: RunContext) -> list[GenerationRequest]:
    params = SamplingParams(
        temperature=settings.temperature, top_p=settings.top_p, max_tokens=settings.max_tokens
    )
    return [
        GenerationRequest(
            messages=[
                ChatMessage(role="system", content=SYSTEM),
                ChatMessage(
                    role="user",
                    content=f"{entropy_line(context.seed, record.id, i)}\n\n{plot_prompt(record.data)}",
                ),
            ],
            params=params,
            sample_index=i,
        )
        for i in range(settings.samples_per_record)
    ]


@hookimpl
def filter(sample: Sample, settings: PlotFilterSettings, context: RunContext) -> Verdict:
    text = sample.text.strip()
    if settings.drop_truncated and sample.generation.finish_reason == "length":
        return Verdict.drop("truncated (hit max_tokens)")
    if len(text) < settings.min_chars:
        return Verdict.drop(f"too short ({len(text)} < {settings.min_chars} chars)")
    return Verdict.keep(text=text)


@hookimpl
def format(sample: Sample, settings: PlotFormatSettings, context: RunContext) -> list[TrainingExample]:
    fields = sample.record.data
    if settings.style == "completion":
        return [
            TrainingExample.completion(
                prompt=f"{input_text(fields)}\n\n{settings.demarcator}",
                completion=f" {sample.text}{settings.end_marker}",
            )
        ]
    return [
        TrainingExample.chat(
            [
                ChatMessage(role="system", content=settings.system_prompt),
                ChatMessage(role="user", content=input_text(fields)),
                ChatMessage(role="assistant", content=sample.text),
            ]
        )
    ]


@hookimpl
def framing(settings: PlotFormatSettings) -> Framing:
    """How a model tuned on this dataset is prompted: the four fields as the user message (chat,
    after the system prompt) or followed by the demarcator (completion, stopping at the end
    marker)."""
    if settings.style == "completion":
        return Framing(
            style="completion", prompt_suffix=f"\n\n{settings.demarcator}", stop=[settings.end_marker]
        )
    return Framing(style="chat", system_prompt=settings.system_prompt)


RUBRIC = (
    "A complete film plot outline for the genre, tone, place and period asked for: it covers "
    "the setting, the main characters and what they want, the inciting incident, the rising "
    "conflict, the climax and the resolution, as flowing prose without headings, lists or a "
    "title line. Score low for outlines that stop early, stay vague or generic, ignore the "
    "asked genre, tone, place or period, or contradict themselves."
)


@hookimpl
def rubric(settings: PlotFormatSettings) -> str:
    """The judge's rubric for this task (the ``judge`` and ``best-of-n`` filters' default)."""
    return RUBRIC
