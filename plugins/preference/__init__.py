"""preference: best and worst candidates as preference fine-tuning lines (DPO).

A format for presets that list the ``best-of-n`` filter: each kept sample becomes one OpenAI
preference line, ``{"input": {"messages": [...]}, "preferred_output": [best],
"non_preferred_output": [worst]}``, whose input is the request the candidates answered (after an
optional system message). ``tune export --format trl`` turns the lines into TRL's
``prompt``/``chosen``/``rejected`` rows, ``tune validate`` checks them, and the hosted trainers
and the ``trl`` trainer run DPO on them.

A sample whose best and worst candidates score less than ``min_margin`` apart makes no line (a
pair with no clear preference teaches nothing).
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from synthtune.core import RunContext, Sample, TrainingExample, hookimpl
from synthtune.core.errors import ConfigError
from synthtune.core.settings import StageSettings
from synthtune.plugins.best_of_n import KEY


class PreferenceFormatSettings(StageSettings):
    """``[format]`` settings of the ``preference`` plugin."""

    min_margin: float = Field(default=1.0, ge=0, description="least score gap between chosen and rejected")
    system_prompt: str | None = Field(
        default=None, description="replaces the request's system message in the line's input (none: kept)"
    )


def preference_line(sample: Sample, settings: PreferenceFormatSettings) -> TrainingExample | None:
    """The preference line of one sample graded by ``best-of-n``, or ``None`` without a clear pair."""
    found = sample.data.get(KEY)
    if not isinstance(found, dict) or "chosen" not in found:
        raise ConfigError(
            f"format 'preference': sample of record {sample.record.id!r} has no candidates; "
            'list [[filter]] plugin = "best-of-n" in the preset'
        )
    chosen, rejected = found["chosen"], found["rejected"]
    margin = float(found["chosen_score"]) - float(found["rejected_score"])
    if found["best"] == found["worst"] or margin < settings.min_margin or chosen == rejected:
        return None
    messages = [m.model_dump(exclude_none=True) for m in sample.request.messages]
    if settings.system_prompt is not None:
        messages = [{"role": "system", "content": settings.system_prompt}] + [
            m for m in messages if m.get("role") not in ("system", "developer")
        ]
    return TrainingExample.preference(
        input={"messages": messages},
        preferred=[{"role": "assistant", "content": chosen}],
        non_preferred=[{"role": "assistant", "content": rejected}],
    )


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return PreferenceFormatSettings if stage == "format" else None


@hookimpl
def format(sample: Sample, settings: PreferenceFormatSettings, context: RunContext) -> list[TrainingExample]:
    """One preference line (best vs worst candidate), or none when they are too close."""
    line = preference_line(sample, settings)
    return [line] if line is not None else []
