"""The ``train`` stage of the ``openai`` plugin: OpenAI fine-tuning jobs.

validate -> upload (``purpose="fine-tune"``) -> wait until processed -> create the job -> record
it in the run store at once -> follow its events to a terminal state -> record the result.

A rerun with the same dataset and settings finds the recorded job and reattaches to it (or
returns its result when it has finished) instead of creating another; a job whose creation was
interrupted before its id could be recorded is found again through its ``synthtune_key``
metadata. A failed or cancelled job is not reused: a rerun then creates a new one.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import openai
from synthtune.core.errors import ConfigError
from synthtune.core.models import DatasetFiles, RunContext, TrainingJob
from synthtune.core.validation import summary_lines, validate_file
from synthtune.plugins.openai.client import make_client, resolve_base_url
from synthtune.plugins.openai.deadline import check_cutoff
from synthtune.plugins.openai.jobs import (
    FILE_PREFIX,
    JOB_PREFIX,
    TERMINAL,
    Echo,
    FineTuningError,
    JobRecord,
    follow,
    refusal,
    stderr_echo,
)
from synthtune.plugins.openai.train_settings import Auto, OpenAITrainSettings

__all__ = ["Auto", "OpenAITrainSettings", "train_openai"]

METADATA_KEY = "synthtune_key"


# -- the request -----------------------------------------------------------------------------------


def method_of(settings: OpenAITrainSettings, kind: str) -> str:
    method = settings.method or ("dpo" if kind == "preference" else "supervised")
    if method == "supervised" and kind == "preference":
        raise ConfigError("a preference dataset needs method = 'dpo'")
    if method == "dpo" and kind != "preference":
        raise ConfigError(f"method 'dpo' needs a preference dataset, not {kind}")
    return method


def job_body(
    settings: OpenAITrainSettings, kind: str, training_file: str, validation_file: str | None, key: str
) -> dict[str, Any]:
    """The keyword arguments of ``fine_tuning.jobs.create`` (the request body)."""
    method = method_of(settings, kind)
    names = ["n_epochs", "batch_size", "learning_rate_multiplier"] + (["beta"] if method == "dpo" else [])
    hyper = {name: getattr(settings, name) for name in names if getattr(settings, name) != "auto"}
    body: dict[str, Any] = {
        "model": settings.model,
        "training_file": training_file,
        "method": {"type": method, method: {"hyperparameters": hyper} if hyper else {}},
        "metadata": {**settings.metadata, METADATA_KEY: key},
    }
    if validation_file:
        body["validation_file"] = validation_file
    if settings.suffix:
        body["suffix"] = settings.suffix
    if settings.seed is not None:
        body["seed"] = settings.seed
    return body


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def job_key(dataset: DatasetFiles, settings: OpenAITrainSettings) -> tuple[str, str]:
    """(job key, dataset hash): the same files, endpoint and job settings give the same key."""
    data = _sha256(dataset.train) + (":" + _sha256(dataset.valid) if dataset.valid else "")
    job_settings = settings.model_dump(
        mode="json",
        exclude={
            "wait",
            "poll_interval",
            "base_url",
            "api_key_env",
            "timeout",
            "max_retries",
            "ignore_cutoff",
        },
    )
    identity = {
        "data": data,
        "settings": job_settings,
        "endpoint": resolve_base_url(settings.base_url) or "openai",
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return key, data


# -- the steps -------------------------------------------------------------------------------------


def _validate(dataset: DatasetFiles, settings: OpenAITrainSettings, echo: Echo) -> None:
    epochs = settings.n_epochs if isinstance(settings.n_epochs, int) else None
    for path in [dataset.train, dataset.valid]:
        if path is None:
            continue
        report = validate_file(path, model=settings.model, epochs=epochs)
        if path == dataset.valid:  # a validation file may be small
            report.issues = [i for i in report.issues if i.code != "too_few_examples"]
        if not report.ok:
            for line in summary_lines(report, max_errors=10):
                echo(line)
            first = report.errors[0]
            raise FineTuningError(
                f"{path}: {len(report.errors)} validation error(s), first: {first}; nothing was uploaded "
                f"(see `tune validate {path} --model {settings.model}`)"
            )
        cost = f"~${report.cost_usd:.2f}" if report.cost_usd is not None else "cost unknown"
        echo(
            f"validated {path}: {report.examples} {report.kind} examples, {report.tokens.total} tokens, "
            f"{report.epochs} epochs{' (auto)' if report.epochs_auto else ''}, "
            f"~{report.billed_tokens} billed tokens, {cost}"
        )


def _upload(client: openai.OpenAI, path: Path, context: RunContext, poll: float, echo: Echo) -> str:
    """Upload ``path`` for fine-tuning (once per content and endpoint) and wait until processed."""
    endpoint = str(client.base_url)
    cache_key = f"{FILE_PREFIX}{_sha256(path)}:{endpoint}"
    file_id = context.cache_get(cache_key) or None
    try:
        if file_id is None:
            with path.open("rb") as handle:
                uploaded = client.files.create(file=(path.name, handle), purpose="fine-tune")
            file_id = uploaded.id
            context.cache_put(cache_key, file_id)
            echo(f"uploaded {path} as {file_id}")
        processed = client.files.wait_for_processing(file_id, poll_interval=poll, max_wait_seconds=3600)
    except openai.NotFoundError:
        if context.cache_get(cache_key) == file_id:  # the server forgot the file: upload again
            context.cache_put(cache_key, "")
        raise FineTuningError(
            f"uploaded file {file_id} is gone from the server; rerun to upload again"
        ) from None
    except openai.APIStatusError as error:
        raise refusal(error, f"the upload of {path}") from None
    if processed.status != "processed":
        details = getattr(processed, "status_details", None) or processed.status
        raise FineTuningError(f"OpenAI could not process {path} ({file_id}): {details}")
    return file_id


def _find_by_metadata(client: openai.OpenAI, key: str) -> Any | None:
    """A job created with this key whose id never reached the store (killed mid-request)."""
    try:
        page = client.fine_tuning.jobs.list(limit=100)
    except openai.APIStatusError:
        return None
    for job in page.data:
        if (job.metadata or {}).get(METADATA_KEY) == key:
            return job
    return None


def _as_training_job(record: JobRecord, reattached: bool) -> TrainingJob:
    return TrainingJob(
        id=record.job_id or "",
        backend="openai",
        status=record.status,
        base_model=record.base_model,
        fine_tuned_model=record.fine_tuned_model,
        trained_tokens=record.trained_tokens,
        error=record.error,
        training_file=record.training_file,
        validation_file=record.validation_file,
        reattached=reattached,
    )


def train_openai(
    dataset: DatasetFiles, settings: OpenAITrainSettings, context: RunContext, echo: Echo = stderr_echo
) -> TrainingJob:
    """Fine-tune ``settings.model`` on ``dataset`` with the OpenAI fine-tuning jobs API.

    Returns the job as it stands when this returns: terminal when ``settings.wait``, else as
    created. Raises :class:`FineTuningError` (one line) on invalid data, a refusal or a lost
    connection (after the client's retries).
    """
    try:
        return _train(dataset, settings, context, echo)
    except openai.APIConnectionError as error:
        where = resolve_base_url(settings.base_url) or "api.openai.com"
        raise FineTuningError(
            f"lost the connection to {where} ({error}); rerun the same command to resume: "
            "a job already created is reattached, never created twice"
        ) from None


def _train(
    dataset: DatasetFiles, settings: OpenAITrainSettings, context: RunContext, echo: Echo
) -> TrainingJob:
    key, data_hash = job_key(dataset, settings)
    stored = context.cache_get(JOB_PREFIX + key)
    record = JobRecord.model_validate_json(stored) if stored else None
    if record is not None and record.status in ("failed", "cancelled"):
        echo(f"job {record.job_id} for this dataset ended {record.status}; creating a new one")
        record = None
    if record is None:  # a new job: past the cut-off, refuse before even a key is needed
        check_cutoff(settings.ignore_cutoff, echo)
    try:
        client = make_client(
            base_url=settings.base_url,
            api_key_env=settings.api_key_env,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )
    except openai.OpenAIError as error:
        raise ConfigError(f"openai client: {error}") from None

    def save() -> None:
        assert record is not None
        context.cache_put(JOB_PREFIX + key, record.model_dump_json())

    reattached = record is not None and record.job_id is not None
    if record is not None and record.job_id is None:  # killed while creating: did the job exist?
        found = _find_by_metadata(client, key)
        if found is not None:
            record.update_from(found)
            save()
            reattached = True
        else:
            record = None
    if record is None:
        check_cutoff(settings.ignore_cutoff, echo)  # (again: a record killed while creating)
        _validate(dataset, settings, echo)
        poll = min(settings.poll_interval, 5.0)
        training_file = _upload(client, dataset.train, context, poll, echo)
        validation_file = _upload(client, dataset.valid, context, poll, echo) if dataset.valid else None
        body = job_body(settings, dataset.kind, training_file, validation_file, key)
        now = time.time()
        record = JobRecord(
            key=key,
            base_model=settings.model,
            training_file=training_file,
            validation_file=validation_file,
            dataset_sha256=data_hash,
            run_id=context.run_id or None,
            created_at=now,
            updated_at=now,
        )
        save()  # "creating": a kill from here on is recovered through the job's metadata
        try:
            job = client.fine_tuning.jobs.create(**body)
        except openai.APIStatusError as error:
            record.status = "refused"
            save()
            raise refusal(error, f"to create a fine-tuning job for {settings.model}", dataset.train) from None
        record.update_from(job)
        save()
        echo(f"created fine-tuning job {job.id} ({settings.model}, {body['method']['type']})")
    else:
        echo(f"reattached to fine-tuning job {record.job_id} ({record.status})")

    if settings.wait and record.status not in TERMINAL:

        def on_update(job: Any, last_event_id: str | None) -> None:
            assert record is not None
            record.update_from(job)
            record.last_event_id = last_event_id
            save()

        assert record.job_id is not None
        follow(
            client,
            record.job_id,
            poll_interval=settings.poll_interval,
            last_event_id=record.last_event_id,
            on_update=on_update,
            echo=echo,
        )
    return _as_training_job(record, reattached)
