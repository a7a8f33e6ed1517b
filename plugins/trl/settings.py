"""Settings of the ``trl`` trainer: what a preset's ``[train]`` table or ``--set KEY=VALUE`` sets.

This module imports nothing heavy, so presets and ``tune`` validate these settings without the
``local`` extra installed.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator
from synthtune.core import trust
from synthtune.core.settings import StageSettings


class TrlTrainSettings(StageSettings):
    """Supervised fine-tuning with TRL's SFTTrainer, LoRA through PEFT by default."""

    # Trains on the user's own hardware: estimates show no training dollars for it.
    runs_locally: ClassVar[bool] = True

    model: str = Field(
        min_length=1,
        description="base model: a local folder, a Hugging Face model name (a causal LM), or a .gguf "
        "file (dequantised once into OUTPUT_DIR/base-model; needs the gguf package)",
    )
    output_dir: str | None = trust.output_path(
        "where the adapter (or full model) and tokenizer are saved; default DATASET_FOLDER/trl/MODEL_NAME"
    )
    epochs: float = Field(default=3.0, gt=0)
    max_steps: int | None = Field(
        default=None, ge=1, description="stop after this many steps (wins over epochs)"
    )
    learning_rate: float = Field(default=2e-4, gt=0)
    per_device_batch_size: int = Field(default=4, ge=1)
    gradient_accumulation_steps: int = Field(default=1, ge=1)
    max_length: int | None = Field(default=1024, ge=8, description="tokens per example; longer ones are cut")
    warmup_steps: float = Field(
        default=0, ge=0, description="warmup steps, or a fraction of all steps if below 1"
    )
    lr_scheduler: str = Field(
        default="linear", description="any transformers scheduler name (cosine, constant...)"
    )
    seed: int | None = Field(default=None, description="default: the run's seed")
    logging_steps: int = Field(default=10, ge=1)
    save_steps: int = Field(
        default=500, ge=1, description="checkpoint every N steps; a rerun resumes from it"
    )
    use_lora: bool = Field(default=True, description="train a LoRA adapter; false trains every weight")
    lora_r: int = Field(default=16, ge=1)
    lora_alpha: int = Field(default=32, ge=1)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: str | list[str] = Field(
        default="all-linear",
        description="'all-linear' (every linear layer but the output head) or module names, comma separated",
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        default="auto", description="auto: bf16 on GPUs that have it, else fp16 on GPU, fp32 on CPU"
    )
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="dtype the base weights load in; auto keeps the checkpoint's"
    )
    gradient_checkpointing: bool = Field(default=True, description="less memory, about 20% slower")
    assistant_only_loss: bool = Field(
        default=False, description="loss on assistant turns only (chat data; TRL patches the template)"
    )
    packing: bool = False
    beta: float | None = Field(
        default=None, gt=0, description="DPO on preference data: how far from the base model (default 0.1)"
    )
    chat_template_path: str | None = Field(
        default=None,
        description="a tokenizer (folder or name) or .jinja file whose chat template to use, "
        "for base models without one",
    )
    trust_remote_code: bool = trust.user_only(
        False, "run the model repository's own Python code (only from --set, never from a preset file)"
    )

    @field_validator("target_modules", mode="before")
    @classmethod
    def _split_modules(cls, value: object) -> object:
        """``q_proj,v_proj`` (as ``--set`` gives it) becomes a list; ``all-linear`` stays a string."""
        if isinstance(value, str) and "," in value:
            return [part.strip() for part in value.split(",") if part.strip()]
        return value
