"""The ``fireworks`` plugin: hosted fine-tuning on Fireworks AI (supervised fine-tuning jobs on
chat lines, DPO jobs on preference lines), and its jobs in ``tune jobs``.

The key comes from ``$FIREWORKS_API_KEY`` only (the account from ``$FIREWORKS_ACCOUNT_ID`` or
``account_id``), read when a request is made; it is never stored or printed. The HTTP stack (the
``openai`` client) is imported only when a job is started or read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from synthtune.core import hookimpl
from synthtune.core.models import DatasetFiles, RunContext, TrainingJob

if TYPE_CHECKING:
    from synthtune.plugins.fireworks.settings import FireworksTrainSettings


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    if stage == "train":
        from synthtune.plugins.fireworks.settings import FireworksTrainSettings

        return FireworksTrainSettings
    return None


@hookimpl(specname="train")
def train_on_fireworks(
    dataset: DatasetFiles, settings: FireworksTrainSettings, context: RunContext
) -> TrainingJob:
    from synthtune.core.jobs.hosted import train_hosted
    from synthtune.plugins.fireworks.api import FireworksClient

    return train_hosted(dataset, settings, context, FireworksClient.for_settings(settings))


@hookimpl
def register_job_backends(register: Callable[[Any], None]) -> None:
    from synthtune.plugins.fireworks.backend import FireworksBackend

    register(FireworksBackend())
