"""``tune merge-adapter ADAPTER --out DIR``: a LoRA adapter merged into its base model, saved as
one plain checkpoint (safetensors, config, tokenizer with its chat template).

The merged folder is what servers and converters that do not take adapters want: ``vllm serve
DIR``, ``transformers`` pipelines, llama.cpp's ``convert_hf_to_gguf.py``. The base model is the
one ``adapter_config.json`` names (``--base`` to give another path to it).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from synthtune.core.errors import ConfigError, SynthtuneError
from synthtune.plugins.transformers.models import ADAPTER_CONFIG, INSTALL, adapter_base, checked_base


def merge_adapter(adapter: Path, out: Path, base: str | None = None, dtype: str = "auto") -> dict[str, Any]:
    """Merge ``adapter`` into its base and save the result to ``out`` (which must be empty or
    absent); returns what was done, for the command to print."""
    if not (adapter / ADAPTER_CONFIG).is_file():
        what = "no such folder" if not adapter.exists() else f"no {ADAPTER_CONFIG} in it"
        raise ConfigError(f"adapter {adapter}: {what} (not a PEFT adapter folder)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"--out {out} exists and is not empty: choose a new folder")
    base_model = checked_base(base or adapter_base(adapter), adapter, where="--base")
    try:
        import peft
        import torch
        import transformers
    except ImportError as error:
        raise ConfigError(f"merge-adapter needs {error.name}: {INSTALL}") from None
    started = time.monotonic()
    torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(base_model, dtype=torch_dtype)
        merged = peft.PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
        has_tokenizer = (adapter / "tokenizer_config.json").is_file()
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(adapter) if has_tokenizer else base_model)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"cannot merge {adapter} into {base_model}: {first}") from None
    merged.config.name_or_path = str(out)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    size = sum(p.stat().st_size for p in out.glob("*.safetensors"))
    return {"base": base_model, "seconds": time.monotonic() - started, "bytes": size}


def register(cli: typer.Typer) -> None:
    @cli.command("merge-adapter")
    def merge_adapter_command(
        adapter: Path = typer.Argument(..., help="LoRA adapter folder (e.g. the trl trainer's output_dir)."),
        out: Path = typer.Option(..., "--out", "-o", help="New folder for the merged model."),
        base: str | None = typer.Option(
            None, "--base", help="Base model [the adapter_config.json's base_model_name_or_path]."
        ),
        dtype: str = typer.Option("auto", "--dtype", help="auto (the base's), float32, bfloat16, float16."),
    ) -> None:
        """Merge a LoRA adapter into its base model and save one plain checkpoint (for vLLM
        without --enable-lora, or for conversion to GGUF)."""
        if dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ConfigError(f"--dtype {dtype!r}: expected auto, float32, bfloat16 or float16")
        try:
            done = merge_adapter(adapter, out, base, dtype)
        except SynthtuneError:
            raise
        typer.echo(
            f"merged {adapter} into {done['base']}: {out} ({done['bytes'] / 1e6:,.0f} MB of weights, "
            f"{done['seconds']:.1f} s)"
        )
