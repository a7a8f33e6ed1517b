"""``tune jobs list|show|events|cancel|wait``: OpenAI fine-tuning jobs from the command line.

Talks to ``$OPENAI_BASE_URL`` (default OpenAI) with the key in ``$OPENAI_API_KEY``. ``list --local``
shows the jobs recorded in the run store instead (OpenAI's and every other trainer's, such as the
local TRL trainer's); ``wait`` updates the store's record of the job.

The commands are registered every time the CLI is built, so this module imports the ``openai``
library (slow to import) only inside the commands that use it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from synthtune.core.cli.run_cmd import DEFAULT_STORE, STORE_ENV, store_path
from synthtune.core.errors import ConfigError
from synthtune.core.store import RunStore

if TYPE_CHECKING:
    import openai
    from synthtune.plugins.openai.jobs import JobRecord

STORE_HELP = f"Run store file [${STORE_ENV} or ./{DEFAULT_STORE}]."


def _client() -> openai.OpenAI:
    import openai
    from synthtune.plugins.openai.client import make_client

    try:
        return make_client(base_url=None, api_key_env="OPENAI_API_KEY", timeout=120.0, max_retries=5)
    except openai.OpenAIError as error:
        raise ConfigError(f"openai client: {error}") from None


def _when(stamp: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp)) if stamp else "-"


def job_line(job: Any) -> str:
    """One line per job: id, status, base model, fine-tuned model, created."""
    model = job.fine_tuned_model or "-"
    return f"{job.id}  {job.status:<16} {job.model}  {model}  {_when(job.created_at)}"


def _records(store: RunStore) -> list[tuple[str, JobRecord]]:
    from synthtune.plugins.openai.jobs import JOB_PREFIX, NAMESPACE, JobRecord

    return [(k, JobRecord.model_validate_json(v)) for k, v in store.kv_items(NAMESPACE, JOB_PREFIX)]


def _list_local(store: Path | None, limit: int, as_json: bool) -> None:
    """The jobs recorded in the run store: OpenAI's (updated at every poll) and every other
    trainer's (as its ``train`` hook returned them), newest first."""
    from synthtune.core.jobs import recorded_jobs

    path = store_path(store)
    if not path.is_file():
        raise ConfigError(f"no run store at {path} (pass --store or set ${STORE_ENV})")
    run_store = RunStore(path)
    try:
        records = [r for _, r in _records(run_store)]
        others = [r for r in recorded_jobs(run_store) if r.job.backend != "openai"]
    finally:
        run_store.close()
    rows = [
        (
            r.created_at,
            r.model_dump(mode="json"),
            r.job_id or "(not created)",
            r.status,
            r.base_model,
            r.fine_tuned_model,
        )
        for r in records
    ] + [
        (
            r.recorded_at,
            r.job.model_dump(mode="json"),
            r.job.id,
            r.job.status,
            r.job.base_model or "-",
            r.job.fine_tuned_model,
        )
        for r in others
    ]
    rows.sort(key=lambda row: row[0], reverse=True)
    if as_json:
        typer.echo(json.dumps([row[1] for row in rows], indent=2))
        return
    if not rows:
        typer.echo(f"no training jobs recorded in {path}", err=True)
    for when, _, job_id, status, base, model in rows[:limit]:
        typer.echo(f"{job_id}  {status:<16} {base}  {model or '-'}  {_when(int(when))}")


def register(cli: typer.Typer) -> None:
    group = typer.Typer(help="OpenAI fine-tuning jobs.", no_args_is_help=True)

    @group.command("list")
    def list_jobs(
        limit: int = typer.Option(20, "--limit", min=1, max=100, help="How many jobs (newest first)."),
        local: bool = typer.Option(
            False, "--local", help="Jobs recorded in the run store instead (every trainer's)."
        ),
        store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """List fine-tuning jobs (from the API, or with --local from the run store)."""
        import openai
        from synthtune.plugins.openai.jobs import refusal

        if local:
            _list_local(store, limit, as_json)
            return
        try:
            jobs = _client().fine_tuning.jobs.list(limit=limit).data
        except openai.APIStatusError as error:
            raise refusal(error, "to list fine-tuning jobs") from None
        if as_json:
            typer.echo(json.dumps([j.model_dump(mode="json") for j in jobs], indent=2))
            return
        for job in jobs:
            typer.echo(job_line(job))

    @group.command("show")
    def show(job_id: str = typer.Argument(..., help="Fine-tuning job id (ftjob-...).")) -> None:
        """Print one job as JSON."""
        import openai
        from synthtune.plugins.openai.jobs import refusal

        try:
            job = _client().fine_tuning.jobs.retrieve(job_id)
        except openai.APIStatusError as error:
            raise refusal(error, f"to show job {job_id}") from None
        typer.echo(json.dumps(job.model_dump(mode="json"), indent=2))

    @group.command("events")
    def events(
        job_id: str = typer.Argument(..., help="Fine-tuning job id."),
        limit: int = typer.Option(50, "--limit", min=1, help="At most this many, the latest ones."),
    ) -> None:
        """Print a job's events, oldest first."""
        import openai
        from synthtune.plugins.openai.jobs import describe_event, new_events, refusal

        try:
            found = new_events(_client(), job_id, None)
        except openai.APIStatusError as error:
            raise refusal(error, f"to list the events of job {job_id}") from None
        for event in found[-limit:]:
            typer.echo(describe_event(event).strip())

    @group.command("cancel")
    def cancel(job_id: str = typer.Argument(..., help="Fine-tuning job id.")) -> None:
        """Cancel a job."""
        import openai
        from synthtune.plugins.openai.jobs import refusal

        try:
            job = _client().fine_tuning.jobs.cancel(job_id)
        except openai.APIStatusError as error:
            raise refusal(error, f"to cancel job {job_id}") from None
        typer.echo(job_line(job))

    @group.command("wait")
    def wait(
        job_id: str = typer.Argument(..., help="Fine-tuning job id."),
        poll: float = typer.Option(10.0, "--poll", min=0.01, help="Seconds between polls."),
        store: Path | None = typer.Option(None, "--store", help=STORE_HELP),
    ) -> None:
        """Follow a job's events until it ends; update its record in the run store, if any.
        Exit code 1 when it failed or was cancelled."""
        from synthtune.plugins.openai.jobs import NAMESPACE, follow

        run_store = RunStore(store_path(store))
        try:
            mine = [(k, r) for k, r in _records(run_store) if r.job_id == job_id]

            def on_update(job: Any, last_event_id: str | None) -> None:
                for key, record in mine:
                    record.update_from(job)
                    record.last_event_id = last_event_id
                    run_store.kv_put(NAMESPACE, key, record.model_dump_json())

            job = follow(_client(), job_id, poll_interval=poll, on_update=on_update, echo=typer.echo)
        finally:
            run_store.close()
        if job.fine_tuned_model:
            typer.echo(f"fine-tuned model: {job.fine_tuned_model}")
        if job.status != "succeeded":
            if job.error is not None and job.error.message:
                typer.echo(f"error: job {job_id} {job.status}: {job.error.message}", err=True)
            raise typer.Exit(1)

    cli.add_typer(group, name="jobs")
