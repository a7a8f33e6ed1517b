"""synthtune core: the hook contract, the models that flow between stages, and the runner.

Plugin authors need only this module::

    from synthtune.core import hookimpl, Record, GenerationRequest, Verdict, TrainingExample

Every name in ``__all__`` is public API, covered by the stability promise in
``docs/stability.md``; anything else under ``synthtune.core`` may change between releases. The
testing helpers (``Reply``, ``FakeOpenAI``, ``make_sample``, ``run_preset`` ...) are imported on
first use, so importing this module stays cheap for ``tune``'s start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from synthtune.core.endpoint import Endpoint
from synthtune.core.errors import (
    CompletionFailed,
    ConfigError,
    CostCapReached,
    EngineError,
    GenerationError,
    PluginError,
    SynthtuneError,
)
from synthtune.core.hookspecs import hookimpl
from synthtune.core.models import (
    ChatMessage,
    DatasetFiles,
    Framing,
    GenerationOutcome,
    GenerationRequest,
    Record,
    ResumeState,
    RunContext,
    Sample,
    SamplingParams,
    TrainingExample,
    TrainingJob,
    Usage,
    Verdict,
)
from synthtune.core.settings import GenerateSettings, StageSettings

if TYPE_CHECKING:
    from synthtune.core.testing import FakeOpenAI, Reply
    from synthtune.core.testkit import (
        RunOutput,
        fake_openai_server,
        make_sample,
        registered_plugin,
        run_preset,
    )

# Public names served on first use (they import the HTTP server and schema libraries).
_LAZY = {
    "FakeOpenAI": "synthtune.core.testing",
    "Reply": "synthtune.core.testing",
    "RunOutput": "synthtune.core.testkit",
    "fake_openai_server": "synthtune.core.testkit",
    "make_sample": "synthtune.core.testkit",
    "registered_plugin": "synthtune.core.testkit",
    "run_preset": "synthtune.core.testkit",
}

__all__ = [
    "ChatMessage",
    "CompletionFailed",
    "ConfigError",
    "CostCapReached",
    "DatasetFiles",
    "FakeOpenAI",
    "Endpoint",
    "EngineError",
    "Framing",
    "GenerateSettings",
    "GenerationError",
    "GenerationOutcome",
    "GenerationRequest",
    "PluginError",
    "Record",
    "Reply",
    "ResumeState",
    "RunContext",
    "RunOutput",
    "Sample",
    "SamplingParams",
    "StageSettings",
    "SynthtuneError",
    "TrainingExample",
    "TrainingJob",
    "Usage",
    "Verdict",
    "fake_openai_server",
    "hookimpl",
    "make_sample",
    "registered_plugin",
    "run_preset",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
