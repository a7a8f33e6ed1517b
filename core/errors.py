"""User-facing errors and the exit codes of ``tune``.

Every error a user can cause (a bad preset, an unknown plugin, a missing key, an API refusal, a
full disk) is a :class:`SynthtuneError`. The CLI prints it as one line on stderr and exits with
``exit_code``; anything else is a bug and keeps its traceback.

Exit codes (README, "Commands", keeps the same table):

==== =========================================================================================
0    done
1    the run failed: a refusal or a fault at run time (every request failed, the server cannot
     be reached, a plugin error, a full disk), or the dataset is empty
2    bad input found before any work: a preset, a setting, a file, a missing key
3    partial: the run ended but the dataset is incomplete (some requests failed, or the
     ``--max-cost`` cap stopped it); the outputs hold what was made and a rerun goes on
4    busy: another ``tune run`` holds the run store or the output folder; nothing was done
130  interrupted (Ctrl-C); every answer that arrived is kept, a rerun resumes
==== =========================================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3
EXIT_BUSY = 4
EXIT_INTERRUPTED = 130


class SynthtuneError(Exception):
    """Base class for errors shown to the user as one line."""

    exit_code: int = EXIT_FAILED


class ConfigError(SynthtuneError):
    """A preset, setting, plugin name or environment problem found before any work (exit 2)."""

    exit_code = EXIT_BAD_INPUT


class BusyError(SynthtuneError):
    """Another process holds the run store or the output folder (exit 4)."""

    exit_code = EXIT_BUSY


class StoreError(SynthtuneError):
    """The run store could not be read or written (damaged file, full disk): exit 1."""


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


class EngineError(SynthtuneError):
    """A plugin asked the engine for a completion where there is no run to answer it
    (``context.complete()`` outside ``tune run``, or with a backend that cannot take it)."""


class CompletionFailed(SynthtuneError):
    """A ``context.complete()`` request failed after the backend's retries. ``outcome`` holds
    the failed :class:`~synthtune.core.models.GenerationOutcome` (its ``error``). The run counts
    the record as failed and goes on; a rerun retries the record from that step."""

    def __init__(self, outcome: object, step: str | None = None) -> None:
        self.outcome = outcome
        self.step = step
        error = getattr(outcome, "error", None) or "no answer"
        super().__init__(f"completion for step {step!r} failed: {error}")


class CostCapReached(SynthtuneError):
    """The ``--max-cost`` cap is reached: ``context.complete()`` sends nothing more. The run
    stops as capped (exit 3); a rerun with a higher cap goes on."""

    exit_code = EXIT_PARTIAL


class GenerationError(SynthtuneError):
    """The generation backend cannot go on (authentication refused, server gone, ...)."""
