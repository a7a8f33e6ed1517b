"""Fireworks' fine-tuning REST API, as read from its Python SDK (fw-ai-external/python-sdk at
commit 8399c127, 2026-07-21, generated from Fireworks' OpenAPI "Gateway REST API") and its docs
(docs.fireworks.ai: "Fine-tuning via API", "Supervised Fine Tuning - Text", "Direct Preference
Optimization"; read 2026-12-02):

- Datasets: ``POST /v1/accounts/{account}/datasets`` ``{"datasetId", "dataset": {"userUploaded":
  {}, "exampleCount"}}``; ``POST .../datasets/{id}:upload`` (multipart ``file``, up to 150 MB);
  ``GET .../datasets/{id}`` until ``state`` is ``READY``.
- Supervised jobs: ``POST /v1/accounts/{account}/supervisedFineTuningJobs?supervisedFineTuningJobId=ID``
  ``{"dataset", "baseModel", "outputModel", "displayName", "epochs", "learningRate", "loraRank",
  "maxContextLength", "batchSize", "earlyStop", "evaluationDataset"}``; DPO jobs:
  ``POST .../dpoJobs?dpoJobId=ID`` ``{"dataset", "displayName", "trainingConfig": {...},
  "lossConfig": {"method": "DPO", "dpo": {"beta"}}}`` (the loss must be named: unnamed, the DPO
  API defaults to GRPO). ``GET`` a job by its name; list with ``pageSize``.
- Job ``state``: ``JOB_STATE_*`` (CREATING, PENDING, VALIDATING, RUNNING, WRITING_RESULTS,
  COMPLETED, EARLY_STOPPED, FAILED, EXPIRED, CANCELLING, CANCELLED, PAUSED, ...); a failure's
  reason in ``status.message``; ``jobProgress.percent``; ``estimatedCost`` {currencyCode, units,
  nanos}. There is no events list for these jobs: progress comes from the job itself.
- Cancel: ``POST /v1/{job name}:cancel``. The SDK has no cancel method for supervised or DPO jobs
  (only for reinforcement jobs, by that ``:cancel`` path); firectl has ``supervised-fine-tuning-job
  cancel``. The path is inferred from those two.
- Errors: ``{"code", "message"}`` (gRPC gateway), or ``{"error": {"message"}}``.
- Inference: the OpenAI-compatible ``https://api.fireworks.ai/inference/v1`` with the tuned model's
  name ``accounts/{account}/models/{id}``, once it is deployed.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from synthtune.core.errors import ConfigError
from synthtune.core.jobs.hosted import HostedTrainer, sha256_of
from synthtune.core.jobs.http import ProviderHTTP, ProviderRefused
from synthtune.core.jobs.lines import DatasetRejected, LineRules, check_file, usable_validation
from synthtune.core.jobs.models import JobEvent, JobRecord, JobSnapshot, TryHint
from synthtune.core.models import DatasetFiles
from synthtune.plugins.fireworks.settings import (
    ACCOUNT_ENV,
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    FireworksTrainSettings,
)

PROVIDER = "Fireworks"
# Docs: at least 3 examples; roles system/user/assistant with string content, optional
# "weight" 0/1 (supervised); DPO lines: input.messages (+ "tools"), preferred_output and
# non_preferred_output each one assistant message.
RULES = LineRules(provider=PROVIDER, min_examples=3, weight=True, input_keys=frozenset({"messages", "tools"}))
STATUS = {
    "COMPLETED": "succeeded",
    "EARLY_STOPPED": "succeeded",
    "FAILED": "failed",
    "EXPIRED": "failed",
    "CANCELLED": "cancelled",
    "DELETING": "cancelled",
    "DELETING_CLEANING_UP": "cancelled",
    "CANCELLING": "cancelling",
    "RUNNING": "running",
    "WRITING_RESULTS": "running",
    "PAUSED": "paused",
}
INFERENCE_NOTE = (
    "Fireworks serves a tuned model from a deployment: deploy it first (Fireworks' fine-tuning docs), "
    "then ask it through the OpenAI-compatible API"
)


def api_key() -> str:
    key = os.environ.get(API_KEY_ENV)
    if not key:
        raise ConfigError(f"{API_KEY_ENV} is not set: export your Fireworks API key (fireworks.ai, API keys)")
    return key


def slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", text.lower())).strip("-")[:40] or "synthtune"


def _epoch(stamp: Any) -> float | None:
    if not isinstance(stamp, str) or not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _dollars(cost: Any) -> float | None:
    if not isinstance(cost, dict) or cost.get("currencyCode", "USD") != "USD":
        return None
    try:
        return int(cost.get("units") or 0) + int(cost.get("nanos") or 0) / 1e9
    except (TypeError, ValueError):
        return None


class FireworksClient(HostedTrainer):
    """Fireworks' fine-tuning API at ``origin`` (``https://api.fireworks.ai``)."""

    backend = "fireworks"
    api_key_env = API_KEY_ENV

    def __init__(
        self,
        origin: str,
        *,
        account: str | None,
        settings: FireworksTrainSettings | None = None,
        inference_base_url: str | None = None,
        timeout: float = 120.0,
        max_retries: int = 5,
        poll_interval: float = 2.0,
    ) -> None:
        self.endpoint = origin.rstrip("/")
        self.account = account
        self.settings = settings
        self.inference_base_url = (inference_base_url or f"{self.endpoint}/inference/v1").rstrip("/")
        self.poll_interval = poll_interval
        self.http = ProviderHTTP(
            PROVIDER, f"{self.endpoint}/v1", api_key(), timeout=timeout, max_retries=max_retries
        )

    @classmethod
    def for_settings(cls, settings: FireworksTrainSettings) -> FireworksClient:
        account = settings.account()
        if account is None:
            raise ConfigError(
                f"fireworks: set {ACCOUNT_ENV} or train.account_id to your Fireworks account id"
            )
        return cls(
            settings.origin(),
            account=account,
            settings=settings,
            inference_base_url=settings.inference_base_url,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            poll_interval=min(settings.poll_interval, 5.0),
        )

    @classmethod
    def default(
        cls, origin: str | None = None, account: str | None = None, inference_base_url: str | None = None
    ) -> FireworksClient:
        return cls(
            origin or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL,
            account=account or os.environ.get(ACCOUNT_ENV) or None,
            inference_base_url=inference_base_url,
        )

    def _account(self) -> str:
        if not self.account:
            raise ConfigError(f"fireworks: set {ACCOUNT_ENV} to your Fireworks account id")
        return self.account

    def record_extra(self) -> dict[str, str]:
        extra = {"account_id": self._account()}
        if self.settings is not None and self.settings.inference_base_url:
            extra["inference_base_url"] = self.settings.inference_base_url
        return extra

    # -- starting a job ------------------------------------------------------------------------

    def check(self, dataset: DatasetFiles) -> Literal["chat", "preference"]:
        kind, _ = check_file(dataset.train, RULES)
        if dataset.valid is not None:
            if kind == "preference":
                raise DatasetRejected(
                    f"{dataset.valid}: Fireworks DPO jobs take no evaluation dataset; train without "
                    "a validation file ([output] valid_fraction = 0)"
                )
            usable_validation(dataset, RULES, kind)
        return kind

    def upload(self, path: Path, role: Literal["train", "valid"], kind: str) -> str:
        account = self._account()
        dataset_id = f"synthtune-{sha256_of(path)[:24]}"
        name = f"accounts/{account}/datasets/{dataset_id}"
        try:
            dataset = self.http.get(f"/{name}", f"to read dataset {dataset_id}")
        except ProviderRefused as error:
            if error.status != 404:
                raise
            examples = sum(1 for line in path.open("rb") if line.strip())
            body = {"datasetId": dataset_id, "dataset": {"userUploaded": {}, "exampleCount": str(examples)}}
            dataset = self.http.post(f"/accounts/{account}/datasets", f"to create dataset {dataset_id}", body)
        if dataset.get("state") != "READY":
            self.http.upload(f"/{name}:upload", f"the upload of {path}", path, {})
            deadline = time.monotonic() + 600
            while (dataset := self.http.get(f"/{name}", f"to read dataset {dataset_id}")).get(
                "state"
            ) != "READY":
                if time.monotonic() > deadline:
                    raise ConfigError(f"Fireworks has not made {name} ready after 10 minutes; rerun later")
                time.sleep(self.poll_interval)
        return name

    def job_name(self, record: JobRecord) -> str:
        collection = "dpoJobs" if record.method == "dpo" else "supervisedFineTuningJobs"
        return f"accounts/{self._account()}/{collection}/synthtune-{record.key[:20]}-{record.attempt}"

    def output_model(self, record: JobRecord) -> str:
        settings = self.settings
        assert settings is not None
        if settings.output_model:
            return settings.output_model
        again = f"-{record.attempt}" if record.attempt > 1 else ""
        return f"{slug(settings.suffix or 'synthtune')}-{record.key[:8]}{again}"

    def job_body(self, record: JobRecord) -> dict[str, Any]:
        """The create request's body for ``record`` with this client's settings."""
        settings = self.settings
        assert settings is not None
        training: dict[str, Any] = {"baseModel": settings.model, "outputModel": self.output_model(record)}
        for name, field in (
            ("epochs", "epochs"),
            ("learningRate", "learning_rate"),
            ("loraRank", "lora_rank"),
            ("maxContextLength", "max_context_length"),
            ("batchSize", "batch_size"),
        ):
            value = getattr(settings, field)
            if value is not None:
                training[name] = value
        display = f"synthtune {settings.suffix or record.key[:8]}"
        if record.method == "dpo":
            loss: dict[str, Any] = {"method": "DPO"}
            if settings.dpo_beta is not None:
                loss["dpo"] = {"beta": settings.dpo_beta}
            return {
                "dataset": record.files["train"],
                "displayName": display,
                "trainingConfig": training,
                "lossConfig": loss,
            }
        body = {"dataset": record.files["train"], "displayName": display, **training}
        if settings.early_stop is not None:
            body["earlyStop"] = settings.early_stop
        if "valid" in record.files:
            body["evaluationDataset"] = record.files["valid"]
        return body

    def create(self, record: JobRecord) -> JobSnapshot:
        name = self.job_name(record)
        parent, collection, job_id = name.rsplit("/", 2)
        id_param = "dpoJobId" if collection == "dpoJobs" else "supervisedFineTuningJobId"
        what = f"to create a fine-tuning job for {record.base_model}"
        try:
            job = self.http.post(
                f"/{parent}/{collection}", what, self.job_body(record), params={id_param: job_id}
            )
        except ProviderRefused as error:
            if error.status != 409:  # 409: created by a run that was killed before recording it
                raise
            job = self.http.get(f"/{name}", f"to read job {name}")
        return self.snapshot(job)

    def find_created(self, record: JobRecord) -> JobSnapshot | None:
        try:
            return self.get(self.job_name(record))
        except ProviderRefused as error:
            if error.status == 404:
                return None
            raise

    # -- reading jobs --------------------------------------------------------------------------

    def snapshot(self, job: dict[str, Any]) -> JobSnapshot:
        own = str(job.get("state") or "JOB_STATE_UNSPECIFIED").removeprefix("JOB_STATE_")
        status = STATUS.get(own, "queued")
        training = job.get("trainingConfig") or job
        output = training.get("outputModel")
        if output and not str(output).startswith("accounts/"):
            account = (
                str(job.get("name", "")).split("/")[1]
                if str(job.get("name", "")).startswith("accounts/")
                else self.account
            )
            output = f"accounts/{account}/models/{output}"
        percent = (job.get("jobProgress") or {}).get("percent")
        failure = (job.get("status") or {}).get("message")
        return JobSnapshot(
            id=str(job.get("name")),
            backend=self.backend,
            status=status,
            provider_status=own,
            base_model=training.get("baseModel"),
            fine_tuned_model=output if status == "succeeded" else None,
            created_at=_epoch(job.get("createTime")),
            cost_usd=_dollars(job.get("estimatedCost")),
            error=(failure or f"the job ended {own}") if status == "failed" else None,
            progress=f"{percent}%" if status == "running" and percent is not None else None,
            raw=job,
        )

    def list_jobs(self, limit: int) -> list[JobSnapshot]:
        account = self._account()
        jobs: list[JobSnapshot] = []
        for collection in ("supervisedFineTuningJobs", "dpoJobs"):
            page = self.http.get(
                f"/accounts/{account}/{collection}", f"to list {collection}", {"pageSize": limit}
            )
            jobs += [self.snapshot(job) for job in page.get(collection) or []]
        jobs.sort(key=lambda j: j.created_at or 0.0, reverse=True)
        return jobs[:limit]

    def get(self, job_id: str) -> JobSnapshot:
        return self.snapshot(self.http.get(f"/{job_id}", f"to read job {job_id}"))

    def events(self, job_id: str, after: str | None) -> list[JobEvent]:
        return []  # Fireworks lists no events for these jobs: follow() shows state and progress

    def cancel(self, job_id: str) -> JobSnapshot:
        self.http.post(f"/{job_id}:cancel", f"to cancel job {job_id}")
        return self.get(job_id)

    def try_hint(self, snapshot: JobSnapshot) -> TryHint | None:
        if not snapshot.fine_tuned_model:
            return None
        return TryHint(
            base_url=self.inference_base_url,
            api_key_env=API_KEY_ENV,
            model=snapshot.fine_tuned_model,
            note=INFERENCE_NOTE,
        )
