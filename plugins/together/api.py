"""Together's fine-tuning REST API, as read from its OpenAPI document (togethercomputer/openapi
``openapi.yaml`` at commit 090263aa, 2026-04-28) and its Python SDK (togethercomputer/together-python
at commit eba5e5f0, 2025-12-23):

- ``POST /files/upload`` (multipart: ``purpose=fine-tune``, ``file_name``, ``file_type=jsonl``,
  ``file``) -> a FileResponse (``id``, ``Processed``); ``GET /files/{id}``.
- ``POST /fine-tunes`` (``training_file``, ``model``, ``n_epochs``, ..., ``training_method``
  ``{"method": "sft", "train_on_inputs": ...}`` or ``{"method": "dpo", "dpo_beta": ...}``,
  ``training_type`` ``{"type": "Lora", ...}`` / ``{"type": "Full"}``, LoRA when omitted);
  ``GET /fine-tunes``; ``GET /fine-tunes/{id}``; ``GET /fine-tunes/{id}/events``;
  ``POST /fine-tunes/{id}/cancel``.
- Job statuses: pending, queued, running, compressing, uploading, cancel_requested, cancelled,
  error, completed (``user_error`` too, in the SDK); ``total_price`` is in nano-dollars (the SDK's
  ``finetune_price_to_dollars``); a failed job's reason is in its error events.
- Errors: ``{"error": {"message", "type", ...}}``.
- Inference on a tuned model: the OpenAI-compatible ``/chat/completions`` of the same base URL,
  with the job's ``model_output_name``.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from synthtune.core.errors import ConfigError
from synthtune.core.jobs.hosted import HostedTrainer
from synthtune.core.jobs.http import ProviderHTTP
from synthtune.core.jobs.lines import LineRules, check_file, usable_validation
from synthtune.core.jobs.models import JobEvent, JobRecord, JobSnapshot, TryHint
from synthtune.core.models import DatasetFiles
from synthtune.plugins.together.settings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    TogetherTrainSettings,
)

PROVIDER = "Together"
# The SDK's file check (utils/files.py): roles system/user/assistant, alternating after an
# optional system message, "weight" 0/1, no extra columns; at least MIN_SAMPLES = 1 line.
RULES = LineRules(provider=PROVIDER, min_examples=1, alternate=True, weight=True)
STATUS = {
    "pending": "queued",
    "queued": "queued",
    "running": "running",
    "compressing": "running",
    "uploading": "running",
    "cancel_requested": "cancelling",
    "cancelled": "cancelled",
    "error": "failed",
    "user_error": "failed",
    "completed": "succeeded",
}
NANODOLLARS = 1_000_000_000
INFERENCE_NOTE = (
    "Together serves a tuned model on a dedicated endpoint: deploy it first (Together's fine-tuning "
    "docs), then ask it through the OpenAI-compatible API"
)


def api_key() -> str:
    key = os.environ.get(API_KEY_ENV)
    if not key:
        raise ConfigError(
            f"{API_KEY_ENV} is not set: export your Together API key (api.together.ai, Settings > API keys)"
        )
    return key


def _epoch(stamp: Any) -> float | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _level(level: Any) -> str:
    text = str(level or "").lower()
    return "error" if "error" in text else "warning" if "warn" in text else "info"


class TogetherClient(HostedTrainer):
    """Together's fine-tuning API at ``endpoint`` (a base URL ending in ``/v1``)."""

    backend = "together"
    api_key_env = API_KEY_ENV

    def __init__(
        self,
        endpoint: str,
        *,
        settings: TogetherTrainSettings | None = None,
        timeout: float = 120.0,
        max_retries: int = 5,
        poll_interval: float = 2.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.settings = settings
        self.poll_interval = poll_interval
        self.http = ProviderHTTP(PROVIDER, self.endpoint, api_key(), timeout=timeout, max_retries=max_retries)

    @classmethod
    def for_settings(cls, settings: TogetherTrainSettings) -> TogetherClient:
        return cls(
            settings.endpoint(),
            settings=settings,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            poll_interval=min(settings.poll_interval, 5.0),
        )

    @classmethod
    def default(cls, endpoint: str | None = None) -> TogetherClient:
        return cls(endpoint or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL)

    # -- starting a job ------------------------------------------------------------------------

    def check(self, dataset: DatasetFiles) -> Literal["chat", "preference"]:
        kind, _ = check_file(dataset.train, RULES)
        usable_validation(dataset, RULES, kind)
        return kind

    def upload(self, path: Path, role: Literal["train", "valid"], kind: str) -> str:
        fields = {"purpose": "fine-tune", "file_name": path.name, "file_type": "jsonl"}
        uploaded = self.http.upload("/files/upload", f"the upload of {path}", path, fields)
        file_id = str(uploaded["id"])
        deadline = time.monotonic() + 600
        while not uploaded.get("Processed", True):  # Together checks the file after the upload
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"Together has not processed {path} ({file_id}) after 10 minutes; rerun later"
                )
            time.sleep(self.poll_interval)
            uploaded = self.http.get(f"/files/{file_id}", f"to read file {file_id}")
        return file_id

    def job_body(self, record: JobRecord) -> dict[str, Any]:
        """The ``POST /fine-tunes`` body for ``record`` with this client's settings."""
        settings = self.settings
        assert settings is not None
        body: dict[str, Any] = {
            "training_file": record.files["train"],
            "model": settings.model,
            "n_epochs": settings.n_epochs,
            "n_checkpoints": settings.n_checkpoints,
            "batch_size": settings.batch_size,
            "learning_rate": settings.learning_rate,
            "warmup_ratio": settings.warmup_ratio,
        }
        if "valid" in record.files:
            body["validation_file"] = record.files["valid"]
            body["n_evals"] = settings.n_evals if settings.n_evals is not None else 1
        if settings.suffix:
            body["suffix"] = settings.suffix
        if settings.seed is not None:
            body["random_seed"] = settings.seed
        if record.method == "dpo":
            method: dict[str, Any] = {"method": "dpo"}
            if settings.dpo_beta is not None:
                method["dpo_beta"] = settings.dpo_beta
        else:
            method = {"method": "sft", "train_on_inputs": settings.train_on_inputs}
        body["training_method"] = method
        if not settings.lora:
            body["training_type"] = {"type": "Full"}
        elif settings.lora_r is not None:
            body["training_type"] = {
                "type": "Lora",
                "lora_r": settings.lora_r,
                "lora_alpha": settings.lora_alpha or 2 * settings.lora_r,
                "lora_dropout": settings.lora_dropout,
                "lora_trainable_modules": "all-linear",
            }
        return body

    def create(self, record: JobRecord) -> JobSnapshot:
        body = self.job_body(record)
        job = self.http.post("/fine-tunes", f"to create a fine-tuning job for {body['model']}", body)
        return self.snapshot(job)

    def find_created(self, record: JobRecord) -> JobSnapshot | None:
        body = self.job_body(record)
        for snapshot in self.list_jobs(100):
            raw = snapshot.raw
            if (
                raw.get("training_file") == body["training_file"]
                and raw.get("model") == body["model"]
                and raw.get("n_epochs", body["n_epochs"]) == body["n_epochs"]
                and raw.get("suffix") in (None, "", body.get("suffix"))
            ):
                return snapshot
        return None

    # -- reading jobs --------------------------------------------------------------------------

    def snapshot(self, job: dict[str, Any]) -> JobSnapshot:
        own = str(job.get("status") or "")
        status = STATUS.get(own, "running")
        price = job.get("total_price")
        epochs, done = job.get("n_epochs"), job.get("epochs_completed")
        progress = f"epoch {done}/{epochs}" if status == "running" and done is not None and epochs else None
        return JobSnapshot(
            id=str(job["id"]),
            backend=self.backend,
            status=status,
            provider_status=own,
            base_model=job.get("model"),
            fine_tuned_model=job.get("model_output_name") if status == "succeeded" else None,
            created_at=_epoch(job.get("created_at")),
            trained_tokens=job.get("token_count"),
            cost_usd=price / NANODOLLARS if isinstance(price, int | float) and price > 0 else None,
            progress=progress,
            raw=job,
        )

    def list_jobs(self, limit: int) -> list[JobSnapshot]:
        found = self.http.get("/fine-tunes", "to list fine-tuning jobs").get("data") or []
        jobs = [self.snapshot(job) for job in found]
        jobs.sort(key=lambda j: j.created_at or 0.0, reverse=True)
        return jobs[:limit]

    def get(self, job_id: str) -> JobSnapshot:
        snapshot = self.snapshot(self.http.get(f"/fine-tunes/{job_id}", f"to read job {job_id}"))
        if snapshot.status == "failed":
            errors = [e.message for e in self.events(job_id, None) if e.level == "error"]
            snapshot.error = errors[-1] if errors else f"the job ended with status {snapshot.provider_status}"
        return snapshot

    def events(self, job_id: str, after: str | None) -> list[JobEvent]:
        found = self.http.get(f"/fine-tunes/{job_id}/events", f"to read the events of job {job_id}")
        events = [
            JobEvent(
                id=str(item.get("hash") or f"{item.get('created_at')}|{item.get('message')}"),
                created_at=_epoch(item.get("created_at")),
                level=_level(item.get("level")),
                message=str(item.get("message") or item.get("type") or ""),
            )
            for item in found.get("data") or []
        ]
        ids = [event.id for event in events]
        return events[ids.index(after) + 1 :] if after in ids else events

    def cancel(self, job_id: str) -> JobSnapshot:
        return self.snapshot(self.http.post(f"/fine-tunes/{job_id}/cancel", f"to cancel job {job_id}"))

    def try_hint(self, snapshot: JobSnapshot) -> TryHint | None:
        if not snapshot.fine_tuned_model:
            return None
        return TryHint(
            base_url=self.endpoint,
            api_key_env=API_KEY_ENV,
            model=snapshot.fine_tuned_model,
            note=INFERENCE_NOTE,
        )
