"""What synthtune knows about a hosted training job: the record it keeps in the run store, the
provider's current view of the job, its events, and how to try the tuned model.

Statuses are normalised across providers so the core can tell a running job from a finished one:
``creating`` (synthtune is creating it; no id yet), ``queued``, ``running``, ``cancelling``,
``succeeded``, ``failed``, ``cancelled``, and ``refused`` (the provider refused to create it).
The provider's own word is kept beside it (``provider_status``).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

TERMINAL = ("succeeded", "failed", "cancelled")
# A job in one of these states is not reused by a rerun: the next run creates a new one.
ENDED_BADLY = ("failed", "cancelled", "refused")
JOB_PREFIX = "job:"


class TryHint(BaseModel):
    """How to talk to a tuned model through the provider's OpenAI-compatible endpoint."""

    base_url: str
    api_key_env: str
    model: str
    note: str = ""

    def command(self, preset: str | None = None) -> str:
        """The ``tune try`` command line that asks the tuned model once."""
        parts = [
            "tune try",
            _quote(self.model),
            "--base-url",
            self.base_url,
            "--api-key-env",
            self.api_key_env,
        ]
        if preset:
            parts += ["--preset", _quote(preset)]
        parts.append('"YOUR INPUT"')
        return " ".join(parts)


def _quote(text: str) -> str:
    safe = all(ch.isalnum() or ch in "-_./:@+=" for ch in text)
    return text if safe and text else "'" + text.replace("'", "'\\''") + "'"


class JobEvent(BaseModel):
    """One event of a job, as the provider reports it."""

    id: str
    created_at: float | None = None
    level: str = "info"
    message: str

    def line(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.created_at)) if self.created_at else "--:--:--"
        level = "" if self.level.lower() in ("info", "") else f"{self.level.lower()}: "
        return f"  [{stamp}] {level}{self.message}"


class JobSnapshot(BaseModel):
    """A provider's answer about one job, normalised."""

    id: str
    backend: str
    status: str
    provider_status: str = ""
    base_model: str | None = None
    fine_tuned_model: str | None = None
    created_at: float | None = None
    trained_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    progress: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


class JobRecord(BaseModel):
    """What the run store keeps about one hosted job (namespace: the trainer plugin's name, key
    ``job:<job key>``). Committed before the job is created and after every poll, so a killed
    ``tune`` finds its job again. Holds no secret: the key is named by ``api_key_env`` only."""

    key: str
    backend: str
    job_id: str | None = None
    status: str = "creating"
    provider_status: str = ""
    method: str = "supervised"
    base_model: str
    fine_tuned_model: str | None = None
    files: dict[str, str] = Field(default_factory=dict)  # "train"/"valid" -> the provider's id
    dataset_sha256: str = ""
    trained_tokens: int | None = None
    cost_usd: float | None = None
    error: str | None = None
    last_event_id: str | None = None
    run_id: str | None = None
    endpoint: str = ""
    api_key_env: str = ""
    attempt: int = 1
    extra: dict[str, str] = Field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0

    def update_from(self, snapshot: JobSnapshot) -> None:
        """Copy what the provider says now into the record."""
        self.job_id = snapshot.id
        self.status = snapshot.status
        self.provider_status = snapshot.provider_status
        self.fine_tuned_model = snapshot.fine_tuned_model or self.fine_tuned_model
        if snapshot.trained_tokens is not None:
            self.trained_tokens = snapshot.trained_tokens
        if snapshot.cost_usd is not None:
            self.cost_usd = snapshot.cost_usd
        self.error = snapshot.error
        self.updated_at = time.time()
