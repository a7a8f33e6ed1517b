"""Fireworks' jobs in ``tune jobs`` (light: the HTTP stack is imported when a client is opened)."""

from __future__ import annotations

from synthtune.core.jobs.backend import Credential, JobBackend, JobClient
from synthtune.core.jobs.models import JobRecord
from synthtune.plugins.fireworks.settings import ACCOUNT_ENV, API_KEY_ENV


class FireworksBackend(JobBackend):
    name = "fireworks"

    def owns(self, job_id: str) -> bool:
        return job_id.startswith("accounts/") and (
            "/supervisedFineTuningJobs/" in job_id or "/dpoJobs/" in job_id
        )

    def credentials(self) -> list[Credential]:
        return [Credential.of(API_KEY_ENV), Credential.of(ACCOUNT_ENV)]

    def client(self, record: JobRecord | None = None) -> JobClient:
        from synthtune.plugins.fireworks.api import FireworksClient

        if record is None:
            return FireworksClient.default()
        return FireworksClient.default(
            record.endpoint or None,
            account=record.extra.get("account_id"),
            inference_base_url=record.extra.get("inference_base_url"),
        )
