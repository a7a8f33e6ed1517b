"""Following a hosted job to its end: each new event printed once, status and progress changes,
the record updated after every poll so a killed ``tune`` resumes where it stopped."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from synthtune.core.errors import SynthtuneError
from synthtune.core.jobs.backend import JobClient
from synthtune.core.jobs.models import JobEvent, JobSnapshot

Echo = Callable[[str], None]


class StoppedWaiting(SynthtuneError):
    """The user interrupted the wait; the job keeps running on the provider."""

    exit_code = 130


def stderr_echo(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def status_line(snapshot: JobSnapshot) -> str:
    own = f" [{snapshot.provider_status}]" if snapshot.provider_status not in ("", snapshot.status) else ""
    progress = f" {snapshot.progress}" if snapshot.progress else ""
    return f"job {snapshot.id}: {snapshot.status}{own}{progress}"


def follow(
    client: JobClient,
    job_id: str,
    *,
    poll_interval: float,
    last_event_id: str | None = None,
    on_update: Callable[[JobSnapshot, str | None], None] | None = None,
    echo: Echo = stderr_echo,
    sleep: Callable[[float], None] = time.sleep,
) -> JobSnapshot:
    """Poll ``job_id`` until it ends. ``on_update(snapshot, last_event_id)`` runs after every
    poll. Returns the final snapshot; a failed job's ``error`` is the provider's reason (the last
    error event's message when the job itself carries none). Ctrl-C raises
    :class:`StoppedWaiting`; a lost connection raises ``ProviderUnreachable`` (rerun to resume)."""
    shown = ""
    last_error: str | None = None
    try:
        while True:
            snapshot = client.get(job_id)
            fresh: list[JobEvent] = client.events(job_id, last_event_id)
            for event in fresh:
                echo(event.line())
                if event.level.lower() == "error":
                    last_error = event.message
            if fresh:
                last_event_id = fresh[-1].id
            if snapshot.status == "failed" and not snapshot.error and last_error:
                snapshot = snapshot.model_copy(update={"error": last_error})
            line = status_line(snapshot)
            if line != shown:
                shown = line
                echo(line)
            if on_update is not None:
                on_update(snapshot, last_event_id)
            if snapshot.ended:
                return snapshot
            sleep(poll_interval)
    except KeyboardInterrupt:
        raise StoppedWaiting(
            f"stopped waiting; job {job_id} keeps running on {client.endpoint}: rerun the same "
            f"command to reattach, or `tune jobs wait {job_id}`"
        ) from None
