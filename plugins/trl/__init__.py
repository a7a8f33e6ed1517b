"""The ``trl`` plugin: local supervised fine-tuning (LoRA via PEFT) with Hugging Face TRL.

Trains any causal LM the user has (a local folder or a Hub name) on the chat ``messages`` JSONL
synthtune writes. Needs the ``local`` extra (torch, transformers, trl, peft, datasets), imported
only when training starts. For several GPUs or nodes, the same training function runs under
``accelerate launch -m synthtune.plugins.trl.sft`` (see :mod:`synthtune.plugins.trl.sft`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel
from synthtune.core import DatasetFiles, RunContext, TrainingJob, hookimpl
from synthtune.core.errors import ConfigError
from synthtune.plugins.trl.settings import TrlTrainSettings
from synthtune.plugins.trl.trainer import INSTALL_HINT, default_output_dir, fingerprint, train_sft

BACKEND = "trl"


def job_key(job_id: str) -> str:
    """The run-store key (namespace ``trl``) under which a job is recorded."""
    return f"job:{job_id}"


def _saved(job: TrainingJob) -> bool:
    folder = Path(job.fine_tuned_model or "")
    weights = "adapter_config.json" if getattr(job, "adapter", True) else "config.json"
    return (folder / weights).is_file()


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {"train": TrlTrainSettings}.get(stage)


@hookimpl
def preflight(stage: str, settings: BaseModel) -> None:
    """Before ``tune run --train`` spends anything: the ``local`` extra must be installed."""
    import importlib.util

    if stage != "train":
        return
    for module in ("torch", "transformers", "trl", "peft", "datasets"):
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"{INSTALL_HINT} ({module} is not installed)")


@hookimpl
def train(dataset: DatasetFiles, settings: TrlTrainSettings, context: RunContext) -> TrainingJob:
    """Fine-tune locally and record the job in the run store.

    A rerun with the same settings and data bytes returns the recorded job without training
    again (as long as the saved adapter is still there); an interrupted one resumes from its last
    checkpoint. The job id is ``trl:`` + the absolute output folder.
    """
    output_dir = default_output_dir(settings, dataset.train).resolve()
    seed = settings.seed if settings.seed is not None else context.seed
    job_id = f"{BACKEND}:{output_dir}"
    digest = fingerprint(settings, dataset.train, dataset.valid, output_dir, seed)

    recorded = context.cache_get(job_key(job_id))
    if recorded:
        previous = TrainingJob.model_validate_json(recorded)
        if (
            previous.status == "succeeded"
            and getattr(previous, "fingerprint", None) == digest
            and _saved(previous)
        ):
            context.log.info("trl: %s is already trained on this data with these settings", output_dir)
            return previous

    base = {"id": job_id, "backend": BACKEND, "base_model": settings.model, "fine_tuned_model": None}
    running = TrainingJob(**base, status="running", fingerprint=digest, output_dir=str(output_dir))
    started = False

    def record_start() -> None:
        nonlocal started
        started = True
        context.cache_put(job_key(job_id), running.model_dump_json())

    try:
        result = train_sft(settings, dataset.train, dataset.valid, output_dir, seed, on_start=record_start)
    except BaseException as error:
        if not started:  # a bad dataset, model or setting: no job ran
            raise
        detail = str(error) or type(error).__name__
        status = "cancelled" if isinstance(error, KeyboardInterrupt) else "failed"
        failed = running.model_copy(update={"status": status, "error": detail})
        context.cache_put(job_key(job_id), failed.model_dump_json())
        raise
    job = TrainingJob(
        **{**base, "fine_tuned_model": result.output_dir},
        status="succeeded",
        trained_tokens=result.trained_tokens,
        **result.model_dump(exclude={"output_dir", "base_model", "trained_tokens"}),
        output_dir=result.output_dir,
    )
    context.cache_put(job_key(job_id), job.model_dump_json())
    return job
