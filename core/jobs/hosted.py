"""The engine every hosted trainer shares: check the dataset in the provider's format -> upload it
(once per content and endpoint) -> record the job as ``creating`` -> create it -> record its id
-> follow it to the end, recording every poll.

Nothing is created twice: a rerun with the same data, settings and endpoint finds its record and
reattaches (or returns the finished job); a run killed between the create request and the record
of its id asks the provider (:meth:`HostedTrainer.find_created`) before creating anything. A job
that failed, was cancelled or was refused is not reused: the next run creates a new one.
"""

from __future__ import annotations

import hashlib
import json
import time
from abc import abstractmethod
from pathlib import Path
from typing import Literal

from synthtune.core.jobs.backend import JobClient
from synthtune.core.jobs.follow import Echo, follow, stderr_echo
from synthtune.core.jobs.http import ProviderRefused, ProviderUnreachable
from synthtune.core.jobs.models import ENDED_BADLY, JOB_PREFIX, JobRecord, JobSnapshot, TryHint
from synthtune.core.jobs.settings import NOT_THE_JOB, HostedTrainSettings
from synthtune.core.models import DatasetFiles, RunContext, TrainingJob

FILE_PREFIX = "file:"


class HostedTrainer(JobClient):
    """A provider's job client plus the steps that start a job."""

    api_key_env: str

    @abstractmethod
    def check(self, dataset: DatasetFiles) -> Literal["chat", "preference"]:
        """Check every file of ``dataset`` in the provider's format (raise ``DatasetRejected``,
        one line, before any upload); return the kind of the training file."""

    @abstractmethod
    def upload(self, path: Path, role: Literal["train", "valid"], kind: str) -> str:
        """Upload ``path`` and wait until the provider can use it; return its id."""

    @abstractmethod
    def create(self, record: JobRecord) -> JobSnapshot:
        """Create the job ``record`` describes (method, base model, uploaded files)."""

    @abstractmethod
    def find_created(self, record: JobRecord) -> JobSnapshot | None:
        """The job created for ``record`` by a run killed before it could record the job's id."""

    @abstractmethod
    def try_hint(self, snapshot: JobSnapshot) -> TryHint | None:
        """How to ask the tuned model (see :class:`JobClient`)."""

    def record_extra(self) -> dict[str, str]:
        """Provider details the record keeps so ``tune jobs`` can reach the job again (an account
        id, an inference URL; never a secret)."""
        return {}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def job_key(dataset: DatasetFiles, settings: HostedTrainSettings, endpoint: str) -> tuple[str, str]:
    """(job key, dataset hash): the same files, job settings and endpoint give the same key."""
    data = sha256_of(dataset.train) + (":" + sha256_of(dataset.valid) if dataset.valid else "")
    identity = {
        "data": data,
        "settings": settings.model_dump(mode="json", exclude=NOT_THE_JOB),
        "endpoint": endpoint,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest(), data


def method_for(settings: HostedTrainSettings, kind: str) -> str:
    from synthtune.core.errors import ConfigError

    method = settings.method or ("dpo" if kind == "preference" else "supervised")
    if method == "supervised" and kind == "preference":
        raise ConfigError("a preference dataset needs method = 'dpo'")
    if method == "dpo" and kind != "preference":
        raise ConfigError(f"method 'dpo' needs a preference dataset, not a {kind} one")
    return method


def as_training_job(record: JobRecord, trainer: HostedTrainer, reattached: bool) -> TrainingJob:
    extra: dict[str, object] = {}
    if record.status == "succeeded" and record.job_id is not None and record.fine_tuned_model:
        snapshot = JobSnapshot(
            id=record.job_id, backend=record.backend, status=record.status,
            fine_tuned_model=record.fine_tuned_model,
        )  # fmt: skip
        hint = trainer.try_hint(snapshot)
        if hint is not None:
            extra["try_hint"] = hint.model_dump()
    return TrainingJob(
        id=record.job_id or "",
        backend=record.backend,
        status=record.status,
        base_model=record.base_model,
        fine_tuned_model=record.fine_tuned_model,
        trained_tokens=record.trained_tokens,
        error=record.error,
        cost_usd=record.cost_usd,
        method=record.method,
        reattached=reattached,
        **extra,
    )


def train_hosted(
    dataset: DatasetFiles,
    settings: HostedTrainSettings,
    context: RunContext,
    trainer: HostedTrainer,
    echo: Echo = stderr_echo,
) -> TrainingJob:
    """Train on ``dataset`` with ``trainer``; return the job as it stands when this returns
    (terminal when ``settings.wait``). Records live in ``context``'s key-value cache."""
    key, data_hash = job_key(dataset, settings, trainer.endpoint)
    stored = context.cache_get(JOB_PREFIX + key)
    record = JobRecord.model_validate_json(stored) if stored else None
    attempt = 1
    if record is not None and record.status in ENDED_BADLY:
        ended = f"job {record.job_id or '(not created)'} for this dataset ended {record.status}"
        echo(f"{ended}; creating a new one")
        attempt, record = record.attempt + 1, None

    def save() -> None:
        assert record is not None
        context.cache_put(JOB_PREFIX + key, record.model_dump_json())

    try:
        reattached = record is not None and record.job_id is not None
        if record is not None and record.job_id is None:  # killed while creating: does it exist?
            found = trainer.find_created(record)
            if found is not None:
                record.update_from(found)
                save()
                reattached = True
            else:
                attempt, record = record.attempt, None
        if record is None:
            kind = trainer.check(dataset)
            method = method_for(settings, kind)
            files = {"train": _upload(trainer, context, dataset.train, "train", kind, echo)}
            if dataset.valid is not None:
                files["valid"] = _upload(trainer, context, dataset.valid, "valid", kind, echo)
            now = time.time()
            record = JobRecord(
                key=key,
                backend=trainer.backend,
                method=method,
                base_model=settings.model,
                files=files,
                dataset_sha256=data_hash,
                run_id=context.run_id or dataset.run_id or None,
                endpoint=trainer.endpoint,
                api_key_env=trainer.api_key_env,
                attempt=attempt,
                extra=trainer.record_extra(),
                created_at=now,
                updated_at=now,
            )
            save()  # "creating": a kill from here on is recovered through find_created
            try:
                snapshot = trainer.create(record)
            except ProviderRefused:
                record.status = "refused"
                save()
                raise
            record.update_from(snapshot)
            save()
            echo(f"created {trainer.backend} job {snapshot.id} ({settings.model}, {method})")
        else:
            echo(f"reattached to {trainer.backend} job {record.job_id} ({record.status})")

        if settings.wait and record.status not in ("succeeded", "failed", "cancelled"):

            def on_update(snapshot: JobSnapshot, last_event_id: str | None) -> None:
                assert record is not None
                record.update_from(snapshot)
                record.last_event_id = last_event_id
                save()

            assert record.job_id is not None
            follow(
                trainer,
                record.job_id,
                poll_interval=settings.poll_interval,
                last_event_id=record.last_event_id,
                on_update=on_update,
                echo=echo,
            )
    except ProviderUnreachable as error:
        job = f"job {record.job_id}" if record is not None and record.job_id else "the job"
        raise ProviderUnreachable(
            f"{error}; {job} is recorded: rerun the same command or `tune jobs wait` to resume "
            "(a job already created is reattached, never created twice)"
        ) from None
    return as_training_job(record, trainer, reattached)


def _upload(
    trainer: HostedTrainer,
    context: RunContext,
    path: Path,
    role: Literal["train", "valid"],
    kind: str,
    echo: Echo,
) -> str:
    """Upload once per content, kind and endpoint: a rerun reuses the provider's id."""
    cache_key = f"{FILE_PREFIX}{sha256_of(path)}:{kind}:{trainer.endpoint}"
    known = context.cache_get(cache_key)
    if known:
        return known
    file_id = trainer.upload(path, role, kind)
    context.cache_put(cache_key, file_id)
    echo(f"uploaded {path} as {file_id}")
    return file_id
