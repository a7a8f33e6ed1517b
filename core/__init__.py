"""synthtune core: the hook contract, the models that flow between stages, and the runner.

Plugin authors need only this module::

    from synthtune.core import hookimpl, Record, GenerationRequest, Verdict, TrainingExample
"""

from synthtune.core.endpoint import Endpoint
from synthtune.core.errors import ConfigError, GenerationError, PluginError, SynthtuneError
from synthtune.core.hookspecs import hookimpl
from synthtune.core.models import (
    ChatMessage,
    DatasetFiles,
    Framing,
    GenerationOutcome,
    GenerationRequest,
    Record,
    RunContext,
    Sample,
    SamplingParams,
    TrainingExample,
    TrainingJob,
    Usage,
    Verdict,
)
from synthtune.core.settings import GenerateSettings

__all__ = [
    "ChatMessage",
    "ConfigError",
    "DatasetFiles",
    "Endpoint",
    "Framing",
    "GenerateSettings",
    "GenerationError",
    "GenerationOutcome",
    "GenerationRequest",
    "PluginError",
    "Record",
    "RunContext",
    "Sample",
    "SamplingParams",
    "SynthtuneError",
    "TrainingExample",
    "TrainingJob",
    "Usage",
    "Verdict",
    "hookimpl",
]
__version__ = "0.1.0"
