"""``tune train FILE``: train a model on a dataset file with any installed trainer plugin.

The trainer is picked by name (``--backend``, default ``openai``): any plugin implementing the
``train`` hook works. Its settings come from its ``stage_settings("train")`` model, filled from
``--set KEY=VALUE`` and the shortcut options (``--model``, ``--suffix``, ``--epochs``, ``--wait``),
and are validated before anything runs. ``tune run --preset X --train`` reuses the same path with
the preset's ``[train]`` stage.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel, ValidationError
from synthtune.core.errors import ConfigError
from synthtune.core.jobs.recorded import record_job
from synthtune.core.models import DatasetFiles, RunContext, TrainingJob
from synthtune.core.pipeline import RunResult
from synthtune.core.plugins import PluginHost
from synthtune.core.presets import ResolvedPreset, parse_override
from synthtune.core.pricing import price_table
from synthtune.core.store import RunStore
from synthtune.core.validation import detect_kind, summary_lines, validate_file

# Option -> the settings field it fills: the first of these names the backend's model has.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "model": ("model", "model_name_or_path", "base_model"),
    "epochs": ("n_epochs", "epochs", "num_train_epochs"),
    "suffix": ("suffix",),
    "wait": ("wait",),
}


def _describe(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in item['loc']) or '(settings)'}: {item['msg']}" for item in error.errors()
    )


def train_settings(
    host: PluginHost, backend: str, assignments: list[str], options: dict[str, Any]
) -> BaseModel:
    """The backend's validated train settings from ``--set KEY=VALUE`` and shortcut options."""
    model = host.settings_model(backend, "train")
    values: dict[str, Any] = {}
    for assignment in assignments:
        path, value = parse_override(assignment)
        target = values
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    for option, value in options.items():
        if value is None:
            continue
        field = next((n for n in FIELD_ALIASES[option] if n in model.model_fields), None)
        if field is None:
            raise ConfigError(f"--backend {backend}: has no setting for --{option} (see its settings)")
        values[field] = value
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ConfigError(f"--backend {backend} train settings: {_describe(error)}") from None


def hosted_trainer(host: PluginHost, backend: str) -> str | None:
    """``backend`` when it runs paid jobs on a provider (it registers a job backend)."""
    from synthtune.core.jobs.backend import job_backends

    return backend if backend in job_backends(host) else None


def confirm_spend(settings: BaseModel, dataset: DatasetFiles, yes: bool, hosted: str | None = None) -> None:
    """For a model with a training price, show the validation summary and estimate; ask unless
    ``yes``. Invalid data stops here (exit 1) before anything is uploaded. A ``hosted`` trainer's
    job on a model without a price is paid too: ask (or require ``yes``) all the same."""
    model = getattr(settings, "model", None)
    price = price_table().lookup(model) if isinstance(model, str) else None
    if not isinstance(model, str) or price is None or price.training is None:
        if hosted is not None and not yes:
            what = f"a {hosted} fine-tuning job for {model}"
            if not sys.stdin.isatty():
                raise ConfigError(
                    f"{what} is billed by {hosted} (synthtune has no price for it): pass --yes to start "
                    "it without a prompt"
                )
            question = f"Start {what} on {dataset.train} ({dataset.examples} examples, billed by {hosted})?"
            typer.confirm(question, abort=True)
        return
    epochs = getattr(settings, "n_epochs", None)
    report = validate_file(dataset.train, model=model, epochs=epochs if isinstance(epochs, int) else None)
    if not report.ok:
        typer.echo("\n".join(summary_lines(report)), err=True)
        raise typer.Exit(1)
    cost = f"~${report.cost_usd:.2f}" if report.cost_usd is not None else "an unknown amount"
    if yes:
        return
    if not sys.stdin.isatty():
        raise ConfigError(f"training {model} costs {cost}: pass --yes to start without a prompt")
    question = f"Train {model} on {dataset.train} ({report.billed_tokens} billed tokens, {cost})?"
    typer.confirm(question, abort=True)


def run_training(
    host: PluginHost,
    backend: str,
    settings: BaseModel,
    dataset: DatasetFiles,
    store: RunStore,
    *,
    run_id: str = "",
    seed: int = 0,
) -> TrainingJob:
    """Call ``backend``'s ``train`` hook with a context bound to ``store``; check what it returns."""
    call = host.stage(backend, "train")
    context = RunContext(
        run_id=run_id,
        seed=seed,
        plugin=backend,
        out_dir=dataset.train.parent,
        _get=store.kv_get,
        _put=store.kv_put,
    )
    job = call(dataset=dataset, settings=settings, context=context)
    if not isinstance(job, TrainingJob):
        got = type(job).__name__
        raise ConfigError(f"plugin {backend!r} stage 'train' returned {got}, not a TrainingJob")
    record_job(store, job)  # listed by `tune jobs list --local`, whatever the trainer
    return job


def print_job(job: TrainingJob, preset: str | None = None) -> None:
    """The job on stdout; exit code 1 when it failed or was cancelled. A hosted job that
    succeeded also says where its model answers and the ``tune try`` command that asks it."""
    from synthtune.core.jobs.models import TryHint

    lines = [f"job {job.id} ({job.backend}): {job.status}"]
    if job.trained_tokens is not None:
        lines.append(f"  trained tokens    {job.trained_tokens}")
    cost = getattr(job, "cost_usd", None)
    if isinstance(cost, int | float):
        lines.append(f"  cost              ${cost:.2f}")
    if job.fine_tuned_model:
        lines.append(f"  fine-tuned model  {job.fine_tuned_model}")
    hint = getattr(job, "try_hint", None)
    if isinstance(hint, dict):
        found = TryHint.model_validate(hint)
        lines.append(
            f"  base URL          {found.base_url} (OpenAI-compatible; key from ${found.api_key_env})"
        )
        if found.note:
            lines.append(f"  note              {found.note}")
        lines.append(f"  try it            {found.command(preset)}")
    if job.status == "succeeded" and job.fine_tuned_model:
        lines.append(f"  evaluate it       {eval_command(job, preset)}")
    typer.echo("\n".join(lines))
    if job.status in ("failed", "cancelled"):
        typer.echo(f"error: job {job.id} {job.status}" + (f": {job.error}" if job.error else ""), err=True)
        raise typer.Exit(1)


def eval_command(job: TrainingJob, preset: str | None) -> str:
    """The ``tune eval`` command that compares the base model with the one ``job`` made: a
    folder (a local trainer's) is loaded by the ``transformers`` generate plugin, its base model
    too; a hosted model id is asked through the preset's generate plugin."""
    import shlex

    tuned = job.fine_tuned_model or ""
    local = Path(tuned).is_dir()
    base = f"base=transformers:{job.base_model}" if local and job.base_model else "base"
    where = shlex.quote(preset) if preset else "PRESET"
    return f"tune eval --preset {where} --model {shlex.quote(base)} --model {shlex.quote(f'tuned={tuned}')}"


def preset_of(dataset: DatasetFiles) -> str | None:
    """The preset that wrote ``dataset`` (its folder's report.json), if synthtune wrote it."""
    import json

    try:
        report = json.loads((dataset.train.parent / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    name = report.get("preset") if isinstance(report, dict) else None
    return name if isinstance(name, str) else None


def dataset_files(train: Path, valid: Path | None, run_id: str | None = None) -> DatasetFiles:
    for path in (train, valid):
        if path is not None and not path.is_file():
            raise ConfigError(f"no such file: {path}")
    kind = detect_kind(train) or "chat"
    with train.open("rb") as handle:
        examples = sum(1 for line in handle if line.strip())
    return DatasetFiles(train=train, valid=valid, kind=kind, examples=examples, run_id=run_id)


def train_after_run(
    host: PluginHost, preset: ResolvedPreset, result: RunResult, store_file: Path, yes: bool
) -> None:
    """``tune run --train``: train on the run's dataset files with the preset's ``[train]`` stage."""
    assert preset.train is not None
    if result.report.get("failed"):
        raise ConfigError("not training: some requests failed; rerun to complete the dataset first")
    valid = result.out_dir / "valid.jsonl"
    dataset = dataset_files(
        result.out_dir / "train.jsonl", valid if valid.is_file() else None, run_id=result.run_id
    )
    confirm_spend(preset.train.settings, dataset, yes, hosted_trainer(host, preset.train.plugin))
    run_store = RunStore(store_file)
    try:
        job = run_training(
            host,
            preset.train.plugin,
            preset.train.settings,
            dataset,
            run_store,
            run_id=result.run_id,
            seed=preset.seed,
        )
    finally:
        run_store.close()
    print_job(job, preset.name)


def register(app: typer.Typer, host: PluginHost) -> None:
    from synthtune.core.cli.run_cmd import DEFAULT_STORE, STORE_ENV, store_path

    @app.command("train")
    def train(
        file: Path | None = typer.Argument(None, help="Training JSONL file."),
        validation: Path | None = typer.Option(None, "--validation", help="Validation JSONL file."),
        model: str | None = typer.Option(None, "--model", "-m", help="Base model to fine-tune."),
        suffix: str | None = typer.Option(None, "--suffix", help="Suffix of the model name (<= 64 chars)."),
        epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs [the backend's default]."),
        backend: str = typer.Option("openai", "--backend", "-b", help="Trainer plugin."),
        set_: list[str] = typer.Option([], "--set", help="A trainer setting: KEY=VALUE."),
        wait: bool | None = typer.Option(
            None, "--wait/--no-wait", help="Follow the job to its end [the backend's default]."
        ),
        store: Path | None = typer.Option(
            None, "--store", help=f"Run store file [${STORE_ENV} or ./{DEFAULT_STORE}]."
        ),
        yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before spending."),
        list_backends: bool = typer.Option(
            False, "--list-backends", help="List the installed trainers and whether their keys are set."
        ),
    ) -> None:
        """Train a model on FILE with a trainer plugin; print and record the job and the model."""
        if list_backends:
            from synthtune.core.cli.train_backends import list_backends as show

            show(host)
            return
        if file is None:
            raise ConfigError("tune train: give the training FILE (or --list-backends)")
        settings = train_settings(
            host, backend, set_, {"model": model, "suffix": suffix, "epochs": epochs, "wait": wait}
        )
        dataset = dataset_files(file, validation)
        confirm_spend(settings, dataset, yes, hosted_trainer(host, backend))
        run_store = RunStore(store_path(store))
        try:
            job = run_training(host, backend, settings, dataset, run_store)
        finally:
            run_store.close()
        print_job(job, preset_of(dataset))
