"""Together's jobs in ``tune jobs`` (light: the HTTP stack is imported when a client is opened)."""

from __future__ import annotations

from synthtune.core.jobs.backend import Credential, JobBackend, JobClient
from synthtune.core.jobs.models import JobRecord
from synthtune.plugins.together.settings import API_KEY_ENV


class TogetherBackend(JobBackend):
    name = "together"

    def owns(self, job_id: str) -> bool:
        return job_id.startswith("ft-")

    def credentials(self) -> list[Credential]:
        return [Credential.of(API_KEY_ENV)]

    def client(self, record: JobRecord | None = None) -> JobClient:
        from synthtune.plugins.together.api import TogetherClient

        return TogetherClient.default(record.endpoint if record is not None and record.endpoint else None)
