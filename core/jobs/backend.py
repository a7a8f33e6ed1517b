"""What a train plugin gives ``tune jobs``: a :class:`JobBackend` registered through the
``register_job_backends`` hook, which opens :class:`JobClient` objects on the provider's API.

The core never names a provider: ``tune jobs`` finds a job's backend from the run store's
records, from ``--backend``, or by asking each backend whether it :meth:`JobBackend.owns` the id.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from pydantic import BaseModel
from synthtune.core.errors import ConfigError
from synthtune.core.jobs.models import JOB_PREFIX, JobEvent, JobRecord, JobSnapshot, TryHint

if TYPE_CHECKING:
    from synthtune.core.plugins import PluginHost
    from synthtune.core.store import RunStore


class Credential(BaseModel):
    """One environment variable a backend needs, and whether it is set (never its value)."""

    env: str
    present: bool
    required: bool = True

    @classmethod
    def of(cls, env: str, required: bool = True) -> Credential:
        return cls(env=env, present=bool(os.environ.get(env)), required=required)


class JobClient(ABC):
    """A connection to one provider endpoint, for the job commands."""

    backend: str
    endpoint: str

    @abstractmethod
    def list_jobs(self, limit: int) -> list[JobSnapshot]:
        """The latest jobs, newest first."""

    @abstractmethod
    def get(self, job_id: str) -> JobSnapshot:
        """The job as it stands now."""

    @abstractmethod
    def events(self, job_id: str, after: str | None) -> list[JobEvent]:
        """The job's events newer than the event ``after`` (all when ``None``), oldest first."""

    @abstractmethod
    def cancel(self, job_id: str) -> JobSnapshot:
        """Ask the provider to cancel the job; return it as it stands after the request."""

    def try_hint(self, snapshot: JobSnapshot) -> TryHint | None:
        """How to ask the tuned model of a finished job (``None``: not through an endpoint)."""
        return None


class JobBackend(ABC):
    """A train plugin's jobs, as ``tune jobs`` sees them.

    ``name`` is the plugin's name: its records live in the run store under that namespace.
    """

    name: str

    def owns(self, job_id: str) -> bool:
        """Whether ``job_id`` looks like one of this provider's job ids (used when the run store
        does not know the job and ``--backend`` is not given)."""
        return False

    def credentials(self) -> list[Credential]:
        """The environment variables this backend reads its key (and account) from."""
        return []

    @abstractmethod
    def client(self, record: JobRecord | None = None) -> JobClient:
        """A client for the endpoint ``record`` was created on, or the default endpoint (from
        the environment) when ``record`` is ``None``. Raises ConfigError when a key is missing."""

    def records(self, store: RunStore) -> list[JobRecord]:
        """Every job of this backend recorded in ``store``, oldest first."""
        return [JobRecord.model_validate_json(v) for _, v in store.kv_items(self.name, JOB_PREFIX)]

    def save(self, store: RunStore, record: JobRecord) -> None:
        """Write ``record`` back to ``store`` (after a poll or a cancel)."""
        store.kv_put(self.name, JOB_PREFIX + record.key, record.model_dump_json())


def job_backends(host: PluginHost) -> dict[str, JobBackend]:
    """Every job backend the loaded plugins register, by name (the first one wins a clash)."""
    found: dict[str, JobBackend] = {}
    for plugin, function in host.each("register_job_backends"):

        def register(backend: JobBackend, _plugin: str = plugin) -> None:
            if not isinstance(backend, JobBackend):
                host.warnings.append(
                    f"plugin {_plugin!r} registered a job backend that is not a JobBackend; ignored"
                )
                return
            if backend.name in found:
                host.warnings.append(
                    f"job backend {backend.name!r} of plugin {_plugin!r} ignored: already registered"
                )
                return
            found[backend.name] = backend

        try:
            function(register=register)
        except Exception as error:  # a broken plugin must not break `tune jobs`
            host.warnings.append(f"plugin {plugin!r} failed in register_job_backends: {error}")
    return found


def backend_named(backends: dict[str, JobBackend], name: str) -> JobBackend:
    if name not in backends:
        known = ", ".join(sorted(backends)) or "none"
        raise ConfigError(f"no job backend {name!r} (installed: {known})")
    return backends[name]
