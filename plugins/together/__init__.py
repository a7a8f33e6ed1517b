"""The ``together`` plugin: hosted fine-tuning on Together AI (SFT on chat lines, DPO on
preference lines, LoRA by default), and its jobs in ``tune jobs``.

The key comes from ``$TOGETHER_API_KEY`` only, read when a request is made; it is never stored or
printed. The HTTP stack (the ``openai`` client) is imported only when a job is started or read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from synthtune.core import hookimpl
from synthtune.core.models import DatasetFiles, RunContext, TrainingJob

if TYPE_CHECKING:
    from synthtune.plugins.together.settings import TogetherTrainSettings


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    if stage == "train":
        from synthtune.plugins.together.settings import TogetherTrainSettings

        return TogetherTrainSettings
    return None


@hookimpl(specname="train")
def train_on_together(
    dataset: DatasetFiles, settings: TogetherTrainSettings, context: RunContext
) -> TrainingJob:
    from synthtune.core.jobs.hosted import train_hosted
    from synthtune.plugins.together.api import TogetherClient

    return train_hosted(dataset, settings, context, TogetherClient.for_settings(settings))


@hookimpl
def register_job_backends(register: Callable[[Any], None]) -> None:
    from synthtune.plugins.together.backend import TogetherBackend

    register(TogetherBackend())
