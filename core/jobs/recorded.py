"""The run store's list of training jobs, whatever trainer ran them.

``tune train`` and ``tune run --train`` record every job a ``train`` hook returns (under the
core's own key-value namespace, keyed on the job id), so ``tune jobs list --local`` lists local
trainers' jobs beside the hosted ones. A trainer may keep richer state of its own (the openai
plugin does); this list only holds what the hook returned.
"""

from __future__ import annotations

import time

from pydantic import BaseModel
from synthtune.core.models import TrainingJob
from synthtune.core.store import RunStore

NAMESPACE = "synthtune:jobs"


class RecordedJob(BaseModel):
    """A job as its trainer returned it, and when it was recorded."""

    job: TrainingJob
    recorded_at: float


def record_job(store: RunStore, job: TrainingJob) -> None:
    """Keep ``job`` (replacing an earlier record of the same id)."""
    store.kv_put(NAMESPACE, job.id, RecordedJob(job=job, recorded_at=time.time()).model_dump_json())


def recorded_jobs(store: RunStore) -> list[RecordedJob]:
    """Every recorded job, newest first."""
    jobs = [RecordedJob.model_validate_json(value) for _, value in store.kv_items(NAMESPACE)]
    return sorted(jobs, key=lambda r: r.recorded_at, reverse=True)
