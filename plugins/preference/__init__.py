"""preference: best and worst candidates as preference fine-tuning lines (DPO).

A format for presets that list the ``best-of-n`` filter: each kept sample becomes one OpenAI
preference line, ``{"input": {"messages": [...]}, "preferred_output": [best],
"non_preferred_output": [worst]}``. The input is the request the candidates answered (after an
optional system message), or, with ``task`` set to the task's format plugin, the conversation
that plugin writes for the sample (its chat line without the last assistant turn: what a tuned
model is prompted with). ``tune export --format trl`` turns the lines into TRL's
``prompt``/``chosen``/``rejected`` rows, ``tune validate`` checks them, and the hosted trainers
and the ``trl`` trainer run DPO on them.

A sample whose best and worst candidates score less than ``min_margin`` apart makes no line (a
pair with no clear preference teaches nothing).
"""

from __future__ import annotations

import inspect
from typing import Any

from pydantic import BaseModel, Field, ValidationError, model_validator
from synthtune.core import RunContext, Sample, TrainingExample, hookimpl
from synthtune.core.errors import ConfigError
from synthtune.core.settings import StageSettings
from synthtune.plugins.best_of_n import KEY

JsonDict = dict[str, Any]


class PreferenceFormatSettings(StageSettings):
    """``[format]`` settings of the ``preference`` plugin."""

    min_margin: float = Field(default=1.0, ge=0, description="least score gap between chosen and rejected")
    system_prompt: str | None = Field(
        default=None, description="replaces the request's system message in the line's input (none: kept)"
    )
    task: str | None = Field(
        default=None,
        description="the task's format plugin: its chat line for the sample, without the answer, is the "
        "input (default: the request the candidates answered)",
    )
    task_settings: dict[str, Any] = Field(
        default_factory=dict, description="that plugin's [format] settings (its defaults otherwise)"
    )

    @model_validator(mode="after")
    def _task_format(self) -> PreferenceFormatSettings:
        if self.task is None:
            if self.task_settings:
                raise ValueError("task_settings needs task (the format plugin they are for)")
            return self
        try:  # bad settings are refused now, with the preset, not in the middle of a run
            task_model(self.task).model_validate(self.task_settings)
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ValueError(f"task_settings.{where}: {first['msg']}") from None
        return self


def task_model(task: str) -> type[BaseModel]:
    """The ``[format]`` settings model of plugin ``task`` (a ValueError names what is wrong)."""
    from synthtune.core.plugins import get_host

    try:
        return get_host().settings_model(task, "format")
    except ConfigError as error:
        raise ValueError(f"task: {error}") from None


def _task_messages(
    sample: Sample, text: str, settings: PreferenceFormatSettings, context: RunContext
) -> list[JsonDict]:
    """The task format's chat line for ``sample`` answered with ``text``."""
    from synthtune.core.plugins import get_host

    assert settings.task is not None
    try:
        task_settings = task_model(settings.task).model_validate(settings.task_settings)
    except (ValueError, ValidationError) as error:
        raise ConfigError(f"format 'preference': {error}") from None
    call = get_host().stage(settings.task, "format")
    examples = call(sample=sample.model_copy(update={"text": text}), settings=task_settings, context=context)
    if inspect.isawaitable(examples):
        close = getattr(examples, "close", None)
        if close is not None:  # a coroutine never awaited: close it quietly
            close()
        raise ConfigError(
            f"format 'preference': task {settings.task!r} has an async format; leave task unset"
        )
    first = next(iter(examples or ()), None)
    messages = first.line.get("messages") if isinstance(first, TrainingExample) else None
    if not messages or messages[-1].get("role") != "assistant":
        raise ConfigError(
            f"format 'preference': task {settings.task!r} wrote no chat line ending with the answer "
            "(set its style to chat in task_settings)"
        )
    return [dict(m) for m in messages]


def preference_line(
    sample: Sample, settings: PreferenceFormatSettings, context: RunContext | None = None
) -> TrainingExample | None:
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
    if settings.task is not None:
        context = context or RunContext(run_id="", seed=0)
        best = _task_messages(sample, chosen, settings, context)
        worst = _task_messages(sample, rejected, settings, context)
        messages, preferred, non_preferred = best[:-1], [best[-1]], [worst[-1]]
    else:
        messages = [m.model_dump(exclude_none=True) for m in sample.request.messages]
        preferred = [{"role": "assistant", "content": chosen}]
        non_preferred = [{"role": "assistant", "content": rejected}]
    if settings.system_prompt is not None:
        messages = [{"role": "system", "content": settings.system_prompt}] + [
            m for m in messages if m.get("role") not in ("system", "developer")
        ]
    return TrainingExample.preference(
        input={"messages": messages}, preferred=preferred, non_preferred=non_preferred
    )


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return PreferenceFormatSettings if stage == "format" else None


@hookimpl
def format(sample: Sample, settings: PreferenceFormatSettings, context: RunContext) -> list[TrainingExample]:
    """One preference line (best vs worst candidate), or none when they are too close."""
    line = preference_line(sample, settings, context)
    return [line] if line is not None else []
