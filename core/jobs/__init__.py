"""Hosted training jobs, whatever trainer plugin runs them.

- :mod:`~synthtune.core.jobs.models`: the job record kept in the run store, a provider's view of a
  job (:class:`JobSnapshot`), its events, and how to try the tuned model (:class:`TryHint`).
- :mod:`~synthtune.core.jobs.backend`: :class:`JobBackend` / :class:`JobClient`, what a train
  plugin registers (hook ``register_job_backends``) so ``tune jobs`` can list, show, follow and
  cancel its jobs without knowing the provider.
- :mod:`~synthtune.core.jobs.follow`: following a job to its end, printing each event once.
- :mod:`~synthtune.core.jobs.hosted`: the upload -> create -> record -> follow engine shared by
  hosted trainers (reattach after a kill, never a second job).
- :mod:`~synthtune.core.jobs.http`: the HTTP client for providers' REST APIs (the ``openai``
  client's HTTP stack, with its retries).
- :mod:`~synthtune.core.jobs.lines`: checks of chat and preference lines against a provider's rules.

This package imports no heavy library at module level except :mod:`.http` (``openai``).
"""

from synthtune.core.jobs.backend import Credential, JobBackend, JobClient
from synthtune.core.jobs.models import (
    TERMINAL,
    JobEvent,
    JobRecord,
    JobSnapshot,
    TryHint,
)

__all__ = [
    "TERMINAL",
    "Credential",
    "JobBackend",
    "JobClient",
    "JobEvent",
    "JobRecord",
    "JobSnapshot",
    "TryHint",
]
