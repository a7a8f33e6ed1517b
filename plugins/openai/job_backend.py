"""OpenAI fine-tuning jobs in the generic ``tune jobs`` (registered by the ``openai`` plugin).

The plugin keeps its own records (namespace ``openai``, key ``ft-job:<hash>``, see
:mod:`synthtune.plugins.openai.jobs`); this adapter shows them as core job records and writes
updates back in that format. The ``openai`` library is imported only when a client is opened.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from synthtune.core.errors import ConfigError
from synthtune.core.jobs.backend import Credential, JobBackend, JobClient
from synthtune.core.jobs.models import JobEvent, JobRecord, JobSnapshot

if TYPE_CHECKING:
    from synthtune.core.store import RunStore

NAMESPACE = "openai"
OWN_PREFIX = "ft-job:"
STATUS = {"validating_files": "queued", "queued": "queued", "running": "running"}


def _snapshot(job: Any) -> JobSnapshot:
    failure = getattr(job, "error", None)
    return JobSnapshot(
        id=job.id,
        backend=NAMESPACE,
        status=STATUS.get(job.status, job.status),
        provider_status=job.status,
        base_model=job.model,
        fine_tuned_model=job.fine_tuned_model,
        created_at=job.created_at,
        trained_tokens=job.trained_tokens,
        error=f"{failure.code}: {failure.message}" if failure is not None and failure.message else None,
        raw=job.model_dump(mode="json"),
    )


class OpenAIJobClient(JobClient):
    backend = NAMESPACE

    def __init__(self) -> None:
        import openai
        from synthtune.plugins.openai.client import make_client

        try:
            self.client = make_client(
                base_url=None, api_key_env="OPENAI_API_KEY", timeout=120.0, max_retries=5
            )
        except openai.OpenAIError as error:
            raise ConfigError(f"openai client: {error}") from None
        self.endpoint = str(self.client.base_url).rstrip("/")

    def _guard(self, what: str, call: Any) -> Any:
        import openai
        from synthtune.core.jobs.http import ProviderUnreachable
        from synthtune.plugins.openai.jobs import refusal

        try:
            return call()
        except openai.APIStatusError as error:
            raise refusal(error, what) from None
        except openai.APIConnectionError as error:
            reason = str(error).rstrip(".")
            raise ProviderUnreachable(f"lost the connection to {self.endpoint} ({what}): {reason}") from None

    def list_jobs(self, limit: int) -> list[JobSnapshot]:
        page = self._guard("to list fine-tuning jobs", lambda: self.client.fine_tuning.jobs.list(limit=limit))
        return [_snapshot(job) for job in page.data]

    def get(self, job_id: str) -> JobSnapshot:
        return _snapshot(
            self._guard(f"to show job {job_id}", lambda: self.client.fine_tuning.jobs.retrieve(job_id))
        )

    def events(self, job_id: str, after: str | None) -> list[JobEvent]:
        from synthtune.plugins.openai.jobs import new_events

        found = self._guard(
            f"to list the events of job {job_id}", lambda: new_events(self.client, job_id, after)
        )
        return [JobEvent(id=e.id, created_at=e.created_at, level=e.level, message=e.message) for e in found]

    def cancel(self, job_id: str) -> JobSnapshot:
        return _snapshot(
            self._guard(f"to cancel job {job_id}", lambda: self.client.fine_tuning.jobs.cancel(job_id))
        )


class OpenAIJobBackend(JobBackend):
    name = NAMESPACE

    def owns(self, job_id: str) -> bool:
        return job_id.startswith("ftjob-")

    def credentials(self) -> list[Credential]:
        # An OpenAI-compatible server named by OPENAI_BASE_URL may need no key.
        return [Credential.of("OPENAI_API_KEY", required=not os.environ.get("OPENAI_BASE_URL"))]

    def client(self, record: JobRecord | None = None) -> JobClient:
        return OpenAIJobClient()

    def records(self, store: RunStore) -> list[JobRecord]:
        from synthtune.plugins.openai.jobs import JobRecord as OwnRecord

        records = []
        for key, value in store.kv_items(NAMESPACE, OWN_PREFIX):
            own = OwnRecord.model_validate_json(value)
            files = {"train": own.training_file} if own.training_file else {}
            if own.validation_file:
                files["valid"] = own.validation_file
            records.append(
                JobRecord(
                    key=key.removeprefix(OWN_PREFIX),
                    backend=NAMESPACE,
                    job_id=own.job_id,
                    status=STATUS.get(own.status, own.status),
                    provider_status=own.status,
                    base_model=own.base_model,
                    fine_tuned_model=own.fine_tuned_model,
                    files=files,
                    dataset_sha256=own.dataset_sha256,
                    trained_tokens=own.trained_tokens,
                    error=own.error,
                    last_event_id=own.last_event_id,
                    run_id=own.run_id,
                    api_key_env="OPENAI_API_KEY",
                    created_at=own.created_at,
                    updated_at=own.updated_at,
                )
            )
        return records

    def save(self, store: RunStore, record: JobRecord) -> None:
        from synthtune.plugins.openai.jobs import JobRecord as OwnRecord

        stored = store.kv_get(NAMESPACE, OWN_PREFIX + record.key)
        if stored is None:
            return
        own = OwnRecord.model_validate_json(stored)
        own.job_id = record.job_id
        own.status = record.provider_status or record.status
        own.fine_tuned_model = record.fine_tuned_model
        own.trained_tokens = record.trained_tokens
        own.error = record.error
        own.last_event_id = record.last_event_id
        own.updated_at = record.updated_at
        store.kv_put(NAMESPACE, OWN_PREFIX + record.key, own.model_dump_json())
