"""The task's rubric for LLM judges: filled into filters that take a ``rubric`` and leave it unset.

The preset's format plugin answers first (its optional ``rubric`` hook, with its ``[format]``
settings), then its prompt plugin (with its ``[prompt]`` settings); see ``hookspecs.rubric``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synthtune.core.errors import ConfigError, PluginError

if TYPE_CHECKING:
    from synthtune.core.plugins import PluginHost
    from synthtune.core.presets import ResolvedPreset, StageChoice

FIELD = "rubric"


def _rubric_of(host: PluginHost, choice: StageChoice) -> str | None:
    try:
        call = host.stage(choice.plugin, "rubric")
    except ConfigError:  # the plugin does not implement the optional hook
        return None
    text = call(settings=choice.settings)
    if text is not None and not isinstance(text, str):
        raise PluginError(choice.plugin, "rubric", TypeError(f"returned {type(text).__name__}, not a str"))
    return text.strip() or None if text is not None else None


def task_rubric(host: PluginHost, preset: ResolvedPreset) -> str | None:
    """The rubric of the preset's task: its format plugin's, else its prompt plugin's."""
    for choice in (preset.format, preset.prompt):
        text = _rubric_of(host, choice)
        if text:
            return text
    return None


def fill_rubrics(host: PluginHost, preset: ResolvedPreset) -> None:
    """Give every filter with an unset ``rubric`` setting the task's rubric (asked at most once)."""
    from synthtune.core.presets import StageChoice

    wanting = [
        i
        for i, f in enumerate(preset.filters)
        if FIELD in type(f.settings).model_fields
        and FIELD not in f.settings.model_fields_set
        and getattr(f.settings, FIELD) is None
    ]
    if not wanting:
        return
    text = task_rubric(host, preset)
    if text is None:
        return
    for i in wanting:
        choice = preset.filters[i]
        preset.filters[i] = StageChoice(choice.plugin, choice.settings.model_copy(update={FIELD: text}))
