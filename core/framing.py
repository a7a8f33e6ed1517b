"""The prompt framing of a tuned model, from a preset's format stage (for ``tune try``).

The format plugin's optional ``framing`` hook answers first; a plugin without it gets the
documented convention read from its format settings (see ``hookspecs.framing``).
"""

from __future__ import annotations

from pydantic import BaseModel
from synthtune.core.errors import ConfigError, PluginError
from synthtune.core.models import Framing
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import StageChoice


def conventional_framing(settings: BaseModel) -> Framing:
    """A framing from format settings named by convention: ``style``, ``system_prompt``,
    ``demarcator``, ``end_marker``, ``stop``."""
    style = getattr(settings, "style", "chat")
    style = style if style in ("chat", "completion") else "chat"
    stop = list(getattr(settings, "stop", None) or [])
    demarcator = getattr(settings, "demarcator", None)
    end_marker = getattr(settings, "end_marker", None)
    if style == "completion":
        if isinstance(end_marker, str) and end_marker.strip():
            stop.insert(0, end_marker)
        return Framing(
            style="completion",
            prompt_suffix=f"\n\n{demarcator}" if isinstance(demarcator, str) and demarcator else "",
            stop=stop[:4],
        )
    system = getattr(settings, "system_prompt", None)
    return Framing(style="chat", system_prompt=system if isinstance(system, str) else None, stop=stop[:4])


def framing_for(host: PluginHost, choice: StageChoice) -> Framing:
    """The framing for a preset's format stage ``choice``."""
    try:
        call = host.stage(choice.plugin, "framing")
    except ConfigError:  # the plugin does not implement the optional hook
        return conventional_framing(choice.settings)
    framing = call(settings=choice.settings)
    if framing is None:
        return Framing()
    if not isinstance(framing, Framing):
        error = TypeError(f"returned {type(framing).__name__}, not a Framing")
        raise PluginError(choice.plugin, "framing", error)
    return framing
