"""The internal plugin that makes a list of ready requests into a pipeline run.

``tune eval`` asks models through :class:`~synthtune.core.pipeline.Pipeline` like any run (run
store cache, retries, rate limits, spend cap, lineage): its source yields one record per request
(the request in ``data["request"]``), its prompt stage returns that request, and its format stage
makes no training example. Only the generate stage is a real backend, swapped per model.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, Field
from synthtune.core.hookspecs import hookimpl
from synthtune.core.models import GenerationRequest, Record, RunContext, Sample, TrainingExample
from synthtune.core.presets import ResolvedPreset, StageChoice
from synthtune.core.settings import OutputSettings, StageSettings

PLUGIN = "synthtune-eval"


class ItemsSettings(StageSettings):
    """The requests of one evaluation run: id -> request (JSON)."""

    items: dict[str, dict[str, Any]] = Field(default_factory=dict)


class NoSettings(StageSettings):
    pass


class EvalStages:
    """Source, prompt and format of an evaluation run (registered only while it runs)."""

    @hookimpl
    def stage_settings(self, stage: str) -> type[BaseModel] | None:
        models: dict[str, type[BaseModel]] = {
            "source": ItemsSettings,
            "prompt": NoSettings,
            "format": NoSettings,
        }
        return models.get(stage)

    @hookimpl
    def source(self, settings: ItemsSettings, context: RunContext) -> Iterator[Record]:
        for item_id, request in settings.items.items():
            yield Record(id=item_id, data={"request": request})

    @hookimpl
    def prompt(self, record: Record, settings: NoSettings, context: RunContext) -> list[GenerationRequest]:
        return [GenerationRequest.model_validate(record.data["request"])]

    @hookimpl
    def format(self, sample: Sample, settings: NoSettings, context: RunContext) -> list[TrainingExample]:
        return []


def eval_preset(
    preset: ResolvedPreset, name: str, items: dict[str, GenerationRequest], generate: StageChoice
) -> ResolvedPreset:
    """A preset whose run asks ``generate`` each of ``items`` (id -> request, model unset)."""
    payload = {
        item_id: request.model_dump(mode="json", exclude={"key", "record_id", "endpoint", "model"})
        for item_id, request in items.items()
    }
    return ResolvedPreset(
        name=f"{preset.name}.eval.{name}",
        description=f"tune eval of {preset.name}",
        origin=preset.origin,
        seed=preset.seed,
        source=StageChoice(PLUGIN, ItemsSettings(items=payload)),
        prompt=StageChoice(PLUGIN, NoSettings()),
        generate=generate,
        filters=[],
        format=StageChoice(PLUGIN, NoSettings()),
        train=None,
        output=OutputSettings(),
    )
