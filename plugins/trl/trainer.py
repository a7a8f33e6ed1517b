"""Supervised fine-tuning with TRL: the one training function behind the ``trl`` train hook and
``python -m synthtune.plugins.trl.sft`` (and so ``accelerate launch -m synthtune.plugins.trl.sft``).

torch, transformers, trl, peft and datasets are imported only when training starts (the ``local``
extra); everything else in synthtune works without them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel, Field
from synthtune.core.errors import ConfigError
from synthtune.plugins.trl.data import file_digest, read_rows
from synthtune.plugins.trl.gguf_base import converted, is_gguf
from synthtune.plugins.trl.settings import TrlTrainSettings

log = logging.getLogger("synthtune.trl")

INSTALL_HINT = (
    "the trl trainer needs `pip install -e '.[local]'` "
    "(install torch first: `pip install torch==2.13.0`, or your CUDA build of torch)"
)
RESULT_FILE = "synthtune-result.json"
FINGERPRINT_FILE = "synthtune-fingerprint"


class LossPoint(BaseModel):
    step: int
    loss: float


class SftResult(BaseModel):
    """What one training run produced; also written to ``OUTPUT_DIR/synthtune-result.json``."""

    output_dir: str
    base_model: str
    adapter: bool = Field(description="true: output_dir holds a LoRA adapter; false: a full model")
    kind: str
    examples: int
    steps: int
    epochs: float
    trained_tokens: int | None = None
    first_loss: float | None = None
    final_loss: float | None = None
    mean_train_loss: float | None = None
    eval_loss: float | None = None
    loss_history: list[LossPoint] = Field(default_factory=list)
    runtime_seconds: float
    fingerprint: str
    resumed_from: str | None = None


def import_libraries() -> SimpleNamespace:
    """torch, transformers, trl, peft and datasets, or a ConfigError saying how to install them."""
    try:
        import datasets
        import peft
        import torch
        import transformers
        import trl
    except ImportError as error:
        missing = f" ({error.name} is not installed)" if error.name else ""
        raise ConfigError(INSTALL_HINT + missing) from None
    return SimpleNamespace(torch=torch, transformers=transformers, trl=trl, peft=peft, datasets=datasets)


def fingerprint(
    settings: TrlTrainSettings, train: Path, valid: Path | None, output_dir: Path, seed: int
) -> str:
    """A digest of everything that decides the trained weights: settings, seed and data bytes."""
    unset = {"beta"} if settings.beta is None else set()  # digests from before DPO stay the same
    identity = {
        "settings": settings.model_dump(mode="json", exclude={"output_dir", *unset}),
        "output_dir": str(output_dir.resolve()),
        "seed": seed,
        "train": file_digest(train),
        "valid": file_digest(valid),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def resolve_precision(choice: str, torch: Any) -> str:
    """``auto`` becomes bf16 on GPUs that support it, fp16 on other GPUs, fp32 on CPU."""
    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def _load_tokenizer(settings: TrlTrainSettings, model: str, libs: SimpleNamespace) -> Any:
    try:
        return libs.transformers.AutoTokenizer.from_pretrained(
            model, trust_remote_code=settings.trust_remote_code
        )
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"trl: cannot load the tokenizer of model {settings.model!r}: {first}") from None


def _run_args(
    settings: TrlTrainSettings, output_dir: Path, seed: int, has_valid: bool, libs: SimpleNamespace
) -> dict[str, Any]:
    """The settings SFT and DPO runs share (the trainers' config classes both take them)."""
    precision = resolve_precision(settings.precision, libs.torch)
    return dict(
        output_dir=str(output_dir),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps or -1,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_steps,
        per_device_train_batch_size=settings.per_device_batch_size,
        per_device_eval_batch_size=settings.per_device_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        max_length=settings.max_length,
        seed=seed,
        data_seed=seed,
        logging_steps=settings.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=2,
        eval_strategy="steps" if has_valid else "no",
        eval_steps=settings.save_steps if has_valid else None,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        gradient_checkpointing=settings.gradient_checkpointing,
        model_init_kwargs={"dtype": settings.dtype},
        report_to="none",
        dataloader_pin_memory=libs.torch.cuda.is_available(),
    )


def _sft_config(
    settings: TrlTrainSettings, output_dir: Path, seed: int, has_valid: bool, libs: SimpleNamespace
) -> Any:
    return libs.trl.SFTConfig(
        **_run_args(settings, output_dir, seed, has_valid, libs),
        assistant_only_loss=settings.assistant_only_loss,
        packing=settings.packing,
        chat_template_path=settings.chat_template_path,
        trust_remote_code=settings.trust_remote_code,
    )


DEFAULT_BETA = 0.1


def _dpo_config(
    settings: TrlTrainSettings, output_dir: Path, seed: int, has_valid: bool, libs: SimpleNamespace
) -> Any:
    """The same run settings as for SFT, as a ``DPOConfig`` with ``beta`` (default 0.1)."""
    config_class = getattr(libs.trl, "DPOConfig", None)
    if config_class is None or getattr(libs.trl, "DPOTrainer", None) is None:
        version = getattr(libs.trl, "__version__", "?")
        raise ConfigError(
            f"trl: preference data needs TRL's DPOTrainer, which trl {version} does not have; "
            "pip install -U 'trl>=1.0'"
        )
    beta = settings.beta if settings.beta is not None else DEFAULT_BETA
    return config_class(**_run_args(settings, output_dir, seed, has_valid, libs), beta=beta)


def _lora_config(settings: TrlTrainSettings, libs: SimpleNamespace) -> Any:
    return libs.peft.LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=settings.target_modules,
        task_type="CAUSAL_LM",
    )


def _resumable_checkpoint(output_dir: Path, digest: str, libs: SimpleNamespace) -> str | None:
    """The last checkpoint of an interrupted run with the same fingerprint, if there is one."""
    if not output_dir.is_dir():
        return None
    marker = output_dir / FINGERPRINT_FILE
    checkpoint = libs.transformers.trainer_utils.get_last_checkpoint(str(output_dir))
    if checkpoint is None:
        return None
    if marker.is_file() and marker.read_text().strip() == digest:
        return checkpoint
    log.warning("trl: %s holds checkpoints of other settings or data; starting afresh", output_dir)
    return None


def _losses(history: list[dict[str, Any]]) -> tuple[list[LossPoint], int | None, float | None]:
    points = [LossPoint(step=int(e["step"]), loss=float(e["loss"])) for e in history if "loss" in e]
    tokens = [int(e["num_tokens"]) for e in history if "num_tokens" in e]
    means = [float(e["train_loss"]) for e in history if "train_loss" in e]
    return points, (tokens[-1] if tokens else None), (means[-1] if means else None)


def train_sft(
    settings: TrlTrainSettings,
    train: Path,
    valid: Path | None,
    output_dir: Path,
    seed: int,
    on_start: Callable[[], None] | None = None,
) -> SftResult:
    """Fine-tune ``settings.model`` on ``train`` (chat or prompt/completion JSONL: SFT; preference
    JSONL: DPO), LoRA unless
    ``use_lora`` is false; save the adapter (or model) and tokenizer into ``output_dir``.

    An interrupted run with the same settings and data resumes from its last checkpoint. Works
    the same in one process or under ``accelerate launch`` (only the main process writes files).
    ``on_start`` is called once the data, tokenizer, model and settings have loaded, just before
    the first step: an error before it means nothing was trained (a bad file, path or setting is
    a ConfigError). Returns the losses, steps and token count of the run.
    """
    kind, rows = read_rows(train)
    preference = kind == "preference"
    valid_rows: list[dict[str, Any]] | None = None
    if valid is not None:
        valid_kind, valid_rows = read_rows(valid)
        if valid_kind != kind:
            raise ConfigError(f"validation file {valid} is {valid_kind} data but {train} is {kind} data")
    libs = import_libraries()
    model = converted(settings.model, output_dir, libs) if is_gguf(settings.model) else settings.model
    tokenizer = _load_tokenizer(settings, model, libs)
    if kind in ("chat", "preference") and not tokenizer.chat_template and settings.chat_template_path is None:
        raise ConfigError(
            f"trl: model {settings.model!r} has no chat template for chat data; set chat_template_path "
            "(a tokenizer or .jinja file with one) or use prompt/completion data"
        )
    digest = fingerprint(settings, train, valid, output_dir, seed)
    checkpoint = _resumable_checkpoint(output_dir, digest, libs)

    started = time.monotonic()
    make_config = _dpo_config if preference else _sft_config
    args = make_config(settings, output_dir, seed, valid is not None, libs)
    trainer_class = libs.trl.DPOTrainer if preference else libs.trl.SFTTrainer
    trainer = trainer_class(
        model=model,
        args=args,
        train_dataset=libs.datasets.Dataset.from_list(rows),
        eval_dataset=libs.datasets.Dataset.from_list(valid_rows) if valid_rows else None,
        processing_class=tokenizer,
        peft_config=_lora_config(settings, libs) if settings.use_lora else None,
    )
    main_process = trainer.is_world_process_zero()
    if main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / FINGERPRINT_FILE).write_text(digest + "\n")
    if checkpoint:
        log.info("trl: resuming from %s", checkpoint)
    if on_start is not None:
        on_start()
    output = trainer.train(resume_from_checkpoint=checkpoint)
    eval_loss = None
    if valid_rows:
        eval_loss = float(trainer.evaluate()["eval_loss"])
    trainer.save_model(str(output_dir))
    if main_process:
        trainer.processing_class.save_pretrained(str(output_dir))

    points, tokens, mean_loss = _losses(trainer.state.log_history)
    result = SftResult(
        output_dir=str(output_dir),
        base_model=settings.model,
        adapter=settings.use_lora,
        kind=kind,
        examples=len(rows),
        steps=int(output.global_step),
        epochs=float(trainer.state.epoch or 0.0),
        trained_tokens=tokens,
        first_loss=points[0].loss if points else None,
        final_loss=points[-1].loss if points else None,
        mean_train_loss=mean_loss,
        eval_loss=eval_loss,
        loss_history=points,
        runtime_seconds=round(time.monotonic() - started, 3),
        fingerprint=digest,
        resumed_from=checkpoint,
    )
    if main_process:
        (output_dir / RESULT_FILE).write_text(result.model_dump_json(indent=2) + "\n")
    return result


def default_output_dir(settings: TrlTrainSettings, dataset: Path) -> Path:
    """DATASET_FOLDER/trl/MODEL_NAME unless ``output_dir`` is set."""
    if settings.output_dir:
        return Path(settings.output_dir)
    name = Path(settings.model.rstrip("/")).name or "model"
    name = name.removesuffix(".gguf")
    return dataset.resolve().parent / "trl" / name
