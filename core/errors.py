"""User-facing errors.

Every error a user can cause (a bad preset, an unknown plugin, a missing key, an API refusal) is a
:class:`SynthtuneError`. The CLI prints it as one line on stderr and exits with ``exit_code``;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SynthtuneError(Exception):
    """Base class for errors shown to the user as one line."""

    exit_code: int = 1


class ConfigError(SynthtuneError):
    """A preset, setting, plugin name or environment problem found before any work (exit 2)."""

    exit_code = 2


class PluginError(SynthtuneError):
    """A plugin failed while running a stage; names the plugin, the stage and, when the hook
    was working on one, the record (``record_id``)."""

    def __init__(self, plugin: str, stage: str, error: BaseException, record_id: str | None = None) -> None:
        self.plugin = plugin
        self.stage = stage
        self.original = error
        self.record_id = record_id
        # One line, whatever the original message looked like (the original stays in __cause__).
        detail = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
        if not detail or isinstance(error, KeyError):  # str(KeyError('text')) is just "'text'"
            detail = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
        where = f" on record {record_id!r}" if record_id is not None else ""
        super().__init__(f"plugin {plugin!r} failed in stage {stage!r}{where}: {detail}")


class GenerationError(SynthtuneError):
    """The generation backend cannot go on (authentication refused, server gone, ...)."""
