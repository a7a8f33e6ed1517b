"""``tune jobs list|show|events|cancel|wait``: hosted fine-tuning jobs of every trainer plugin.

Each trainer registers a job backend (hook ``register_job_backends``). A job id is matched to its
backend by ``--backend``, else by the run store's records, else by the shape of the id (``ftjob-``
OpenAI, ``ft-`` Together, ``accounts/.../supervisedFineTuningJobs/...`` Fireworks). Recorded jobs
are reached on the endpoint they were created on; keys come from the environment only.

``tune jobs wait`` with no id follows every unfinished job recorded in the run store: after a
killed ``tune`` or a lost connection it resumes polling, and never creates a job.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from synthtune.core.cli.run_cmd import DEFAULT_STORE, STORE_ENV, store_path
from synthtune.core.errors import ConfigError
from synthtune.core.plugins import PluginHost
from synthtune.core.store import RunStore

if TYPE_CHECKING:  # `tune --help` builds this module: the job models load when a command runs
    from synthtune.core.jobs.backend import JobBackend
    from synthtune.core.jobs.models import JobRecord, JobSnapshot
    from synthtune.core.models import TrainingJob

STORE_HELP = f"Run store file [${STORE_ENV} or ./{DEFAULT_STORE}]."
BACKEND_HELP = "Trainer plugin of the job [found from the run store or the id]."


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def _cost(cost: float | None) -> str:
    return f"${cost:.2f}" if cost is not None else "-"


def snapshot_line(job: JobSnapshot) -> str:
    return (
        f"{job.id}  {job.backend:<9} {job.status:<10} {job.base_model or '-'}  "
        f"{job.fine_tuned_model or '-'}  {_when(job.created_at)}  {_cost(job.cost_usd)}"
    )


def record_line(record: JobRecord) -> str:
    return (
        f"{record.job_id or '(not created)'}  {record.backend:<9} {record.status:<10} {record.base_model}  "
        f"{record.fine_tuned_model or '-'}  {_when(record.created_at)}  {_cost(record.cost_usd)}"
    )


def recorded_line(job: TrainingJob, when: float) -> str:
    return (
        f"{job.id}  {job.backend:<9} {job.status:<10} {job.base_model or '-'}  "
        f"{job.fine_tuned_model or '-'}  {_when(when)}  -"
    )


def recorded(backends: dict[str, JobBackend], store: RunStore) -> list[tuple[JobBackend, JobRecord]]:
    """Every recorded job of every backend, oldest first."""
    pairs = [(b, r) for b in backends.values() for r in b.records(store)]
    return sorted(pairs, key=lambda pair: pair[1].created_at)


def resolve(
    backends: dict[str, JobBackend], store: RunStore, job_id: str, backend: str | None
) -> tuple[JobBackend, list[JobRecord]]:
    """The backend of ``job_id`` and its records in the run store (several runs may share it)."""
    from synthtune.core.jobs.backend import backend_named

    mine = [(b, r) for b, r in recorded(backends, store) if r.job_id == job_id]
    if backend is not None:
        chosen = backend_named(backends, backend)
        return chosen, [r for b, r in mine if b is chosen]
    if mine:
        return mine[0][0], [r for b, r in mine if b is mine[0][0]]
    owners = [b for b in backends.values() if b.owns(job_id)]
    if owners:
        return owners[0], []
    raise ConfigError(f"job {job_id!r} is not in the run store and its id names no trainer: pass --backend")


def finish(
    job: JobSnapshot, backend: JobBackend, hint_from: JobRecord | None, preset: str | None = None
) -> bool:
    """Print the outcome of a followed job (and the ``tune try`` command, framed like ``preset``);
    True when it succeeded."""
    if job.fine_tuned_model:
        typer.echo(f"fine-tuned model: {job.fine_tuned_model}")
        hint = backend.client(hint_from).try_hint(job)
        if hint is not None:
            typer.echo(f"endpoint: {hint.base_url} (OpenAI-compatible; key from ${hint.api_key_env})")
            if hint.note:
                typer.echo(f"note: {hint.note}")
            typer.echo(f"try it: {hint.command(preset)}")
    if job.cost_usd is not None:
        typer.echo(f"cost: {_cost(job.cost_usd)}")
    if job.status != "succeeded":
        reason = f": {job.error}" if job.error else ""
        typer.echo(f"error: job {job.id} {job.status}{reason}", err=True)
        return False
    return True


def follow_recorded(
    owner: JobBackend, job_id: str, records: list[JobRecord], store: RunStore, poll: float
) -> bool:
    """Follow one job to its end, saving its records after every poll; True when it succeeded."""
    from synthtune.core.jobs.follow import follow

    first = records[0] if records else None
    typer.echo(f"following {owner.name} job {job_id}", err=True)

    def on_update(snapshot: JobSnapshot, last_event_id: str | None) -> None:
        for record in records:
            record.update_from(snapshot)
            record.last_event_id = last_event_id
            owner.save(store, record)

    job = follow(
        owner.client(first),
        job_id,
        poll_interval=poll,
        last_event_id=first.last_event_id if first is not None else None,
        on_update=on_update,
        echo=typer.echo,
    )
    run = store.run_info(first.run_id) if first is not None and first.run_id else None
    return finish(job, owner, first, run["preset"] if run else None)


def register(app: typer.Typer, host: PluginHost) -> None:
    group = typer.Typer(
        help="Hosted fine-tuning jobs of every trainer (OpenAI, Together, Fireworks...).",
        no_args_is_help=True,
    )

    @group.command("list")
    def list_jobs(
        limit: int = typer.Option(
            20, "--limit", min=1, max=100, help="How many jobs per trainer (newest first)."
        ),
        local: bool = typer.Option(False, "--local", help="The jobs recorded in the run store instead."),
        backend: str | None = typer.Option(None, "--backend", "-b", help="Only this trainer's jobs."),
        store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List jobs: from each trainer's API (trainers whose keys are set), or with --local the
        jobs recorded in the run store."""
        from synthtune.core.jobs.backend import backend_named, job_backends

        backends = job_backends(host)
        chosen = [backend_named(backends, backend)] if backend else list(backends.values())
        if local:
            from synthtune.core.jobs.recorded import recorded_jobs

            path = store_path(store)
            if not path.is_file():
                raise ConfigError(f"no run store at {path} (pass --store or set ${STORE_ENV})")
            run_store = RunStore(path)
            try:
                records = [r for b, r in recorded(backends, run_store) if b in chosen]
                # Trainers without a job backend (the local TRL trainer): the jobs their train
                # hook returned, as `tune train` and `tune run --train` recorded them.
                others = [
                    r
                    for r in recorded_jobs(run_store)
                    if r.job.backend not in backends and (backend is None or r.job.backend == backend)
                ]
            finally:
                run_store.close()
            rows = [(r.created_at or 0.0, r.model_dump(mode="json"), record_line(r)) for r in records]
            rows += [
                (r.recorded_at, r.job.model_dump(mode="json"), recorded_line(r.job, r.recorded_at))
                for r in others
            ]
            rows.sort(key=lambda row: row[0], reverse=True)
            if as_json:
                typer.echo(json.dumps([row[1] for row in rows], indent=2))
                return
            if not rows:
                typer.echo(f"no training jobs recorded in {path}", err=True)
            for _, _, line in rows[:limit]:
                typer.echo(line)
            return
        jobs: list[JobSnapshot] = []
        asked = 0
        for each in chosen:
            if backend is None and not all(c.present for c in each.credentials() if c.required):
                continue  # no key for this trainer: nothing to list
            asked += 1
            jobs += each.client().list_jobs(limit)
        if not asked:
            typer.echo("no trainer has its key set: see `tune train --list-backends`", err=True)
        if as_json:
            typer.echo(json.dumps([j.raw | {"backend": j.backend} for j in jobs], indent=2))
            return
        for job in jobs:
            typer.echo(snapshot_line(job))

    @group.command("show")
    def show(
        job_id: str = typer.Argument(..., help="Job id."),
        backend: str | None = typer.Option(None, "--backend", "-b", help=BACKEND_HELP),
        store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
    ) -> None:
        """Print one job as the provider reports it (JSON)."""
        from synthtune.core.jobs.backend import job_backends

        run_store = RunStore(store_path(store))
        try:
            owner, records = resolve(job_backends(host), run_store, job_id, backend)
        finally:
            run_store.close()
        job = owner.client(records[0] if records else None).get(job_id)
        typer.echo(json.dumps(job.raw, indent=2))

    @group.command("events")
    def events(
        job_id: str = typer.Argument(..., help="Job id."),
        limit: int = typer.Option(50, "--limit", min=1, help="At most this many, the latest ones."),
        backend: str | None = typer.Option(None, "--backend", "-b", help=BACKEND_HELP),
        store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
    ) -> None:
        """Print a job's events, oldest first."""
        from synthtune.core.jobs.backend import job_backends

        run_store = RunStore(store_path(store))
        try:
            owner, records = resolve(job_backends(host), run_store, job_id, backend)
        finally:
            run_store.close()
        found = owner.client(records[0] if records else None).events(job_id, None)
        for event in found[-limit:]:
            typer.echo(event.line().strip())

    @group.command("cancel")
    def cancel(
        job_id: str = typer.Argument(..., help="Job id."),
        backend: str | None = typer.Option(None, "--backend", "-b", help=BACKEND_HELP),
        store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
    ) -> None:
        """Cancel a job; its record in the run store is updated."""
        from synthtune.core.jobs.backend import job_backends

        run_store = RunStore(store_path(store))
        try:
            owner, records = resolve(job_backends(host), run_store, job_id, backend)
            job = owner.client(records[0] if records else None).cancel(job_id)
            for record in records:
                record.update_from(job)
                owner.save(run_store, record)
        finally:
            run_store.close()
        typer.echo(snapshot_line(job))

    @group.command("wait")
    def wait(
        job_id: str | None = typer.Argument(None, help="Job id [every unfinished job in the run store]."),
        backend: str | None = typer.Option(None, "--backend", "-b", help=BACKEND_HELP),
        poll: float = typer.Option(10.0, "--poll", min=0.01, help="Seconds between polls."),
        store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
    ) -> None:
        """Follow a job (or every unfinished recorded job) to its end, printing new events and
        updating the run store; print the tuned model and how to try it. Exit code 1 unless every
        job succeeded."""
        from synthtune.core.jobs.backend import job_backends
        from synthtune.core.jobs.models import TERMINAL

        backends = job_backends(host)
        run_store = RunStore(store_path(store))
        try:
            if job_id is not None:
                owner, records = resolve(backends, run_store, job_id, backend)
                targets = [(owner, job_id, records)]
            else:
                pending = [
                    (b, r) for b, r in recorded(backends, run_store) if r.status not in (*TERMINAL, "refused")
                ]
                if backend is not None:
                    pending = [(b, r) for b, r in pending if b.name == backend]
                orphans = [r for _, r in pending if r.job_id is None]
                for record in orphans:
                    typer.echo(
                        f"warning: a {record.backend} job for {record.base_model} was being created when "
                        "tune stopped; rerun the training command to find it (it is never created twice)",
                        err=True,
                    )
                ids: dict[tuple[str, str], list[JobRecord]] = {}
                for b, r in pending:
                    if r.job_id is not None:
                        ids.setdefault((b.name, r.job_id), []).append(r)
                targets = [(backends[name], jid, records) for (name, jid), records in ids.items()]
                if not targets:
                    if orphans:
                        raise typer.Exit(1)
                    typer.echo("no unfinished job in the run store")
                    return
            ok = True
            for owner, jid, records in targets:
                ok = follow_recorded(owner, jid, records, run_store, poll) and ok
        finally:
            run_store.close()
        if not ok:
            raise typer.Exit(1)

    app.add_typer(group, name="jobs")
