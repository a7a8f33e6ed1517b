"""OpenAI fine-tuning jobs: following a job to its end, and the job records kept in the run store.

Job records are key-value entries of the run store (namespace ``openai``), written with
``RunContext.cache_put`` so they are committed at once and survive a kill:

- ``ft-job:<job key>``: a :class:`JobRecord` (job id, status, files, trained tokens, fine-tuned
  model, last event seen). The job key is a hash of the dataset content and the job settings, so
  rerunning the same training finds its job instead of creating another.
- ``ft-file:<sha256>:<endpoint>``: the id of an uploaded file, so a rerun does not upload twice.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import openai
from pydantic import BaseModel
from synthtune.core.errors import SynthtuneError
from synthtune.plugins.openai.client import error_message

TERMINAL = ("succeeded", "failed", "cancelled")
JOB_PREFIX = "ft-job:"
FILE_PREFIX = "ft-file:"
NAMESPACE = "openai"

Echo = Callable[[str], None]


class FineTuningError(SynthtuneError):
    """OpenAI refused or failed a fine-tuning request (exit code 1)."""


class StoppedWaiting(SynthtuneError):
    """The user interrupted the wait; the job keeps running on the server."""

    exit_code = 130


class JobRecord(BaseModel):
    """What the run store keeps about one fine-tuning job."""

    key: str
    job_id: str | None = None
    status: str = "creating"
    base_model: str
    training_file: str | None = None
    validation_file: str | None = None
    dataset_sha256: str = ""
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: str | None = None
    last_event_id: str | None = None
    run_id: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def update_from(self, job: Any) -> None:
        """Copy the fields of an API ``FineTuningJob`` into the record."""
        self.job_id = job.id
        self.status = job.status
        self.fine_tuned_model = job.fine_tuned_model
        self.trained_tokens = job.trained_tokens
        failure = getattr(job, "error", None)
        self.error = f"{failure.code}: {failure.message}" if failure is not None and failure.message else None
        self.updated_at = time.time()


def stderr_echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def refusal(error: openai.APIStatusError, what: str, dataset: object = None) -> FineTuningError:
    """One clear line for a refused request. When OpenAI refuses because fine-tuning is closed for
    the organisation or the model is retired, the line says so and names the other trainers
    (and that the dataset is kept); other 400/403/404 answers carry the deadlines as a note."""
    from synthtune.plugins.openai.deadline import ALTERNATIVES, DEADLINES, refusal_reason

    message = " ".join(error_message(error).split()).rstrip(".")
    head = f"OpenAI refused {what} (HTTP {error.status_code}): {message}"
    kept = f"; the dataset is kept ({dataset})" if dataset is not None else ""
    reason = refusal_reason(error.status_code, message)
    if reason is not None:
        return FineTuningError(f"{head}. {reason.capitalize()}{kept}: {ALTERNATIVES}. {DEADLINES}")
    note = f". Note: {DEADLINES}; {ALTERNATIVES}" if error.status_code in (400, 403, 404) else ""
    return FineTuningError(f"{head}{note}")


def new_events(client: openai.OpenAI, job_id: str, last_seen: str | None) -> list[Any]:
    """Events of ``job_id`` newer than ``last_seen``, oldest first.

    The API lists events newest first, paginated with ``after``; reading stops at the last event
    already seen, so each poll fetches only what is new (all of them on the first poll).
    """
    fresh: list[Any] = []
    for event in client.fine_tuning.jobs.list_events(job_id, limit=100):
        if event.id == last_seen:
            break
        fresh.append(event)
    fresh.reverse()
    return fresh


def describe_event(event: Any) -> str:
    """One line for an event: time, level, message (metrics events show step and loss)."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.created_at))
    level = "" if event.level == "info" else f"{event.level}: "
    return f"  [{stamp}] {level}{event.message}"


def follow(
    client: openai.OpenAI,
    job_id: str,
    *,
    poll_interval: float,
    last_event_id: str | None = None,
    on_update: Callable[[Any, str | None], None] | None = None,
    echo: Echo = stderr_echo,
) -> Any:
    """Poll ``job_id`` until it reaches a terminal state, printing each new event and each status
    change. ``on_update(job, last_event_id)`` is called after every poll (to record progress).
    Returns the final ``FineTuningJob``. Ctrl-C raises :class:`StoppedWaiting`; the job goes on.
    """
    status = None
    try:
        while True:
            try:
                job = client.fine_tuning.jobs.retrieve(job_id)
                events = new_events(client, job_id, last_event_id)
            except openai.APIStatusError as error:
                raise refusal(error, f"reading job {job_id}") from None
            for event in events:
                echo(describe_event(event))
            if events:
                last_event_id = events[-1].id
            if job.status != status:
                status = job.status
                echo(f"job {job_id}: {status}")
            if on_update is not None:
                on_update(job, last_event_id)
            if job.status in TERMINAL:
                return job
            time.sleep(poll_interval)
    except KeyboardInterrupt:
        raise StoppedWaiting(
            f"stopped waiting; job {job_id} keeps running on the server: rerun the same command to "
            f"reattach, or `tune jobs wait {job_id}`"
        ) from None
