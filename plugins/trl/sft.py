"""``python -m synthtune.plugins.trl.sft``: the local trainer as a script, for ``accelerate launch``.

    accelerate launch -m synthtune.plugins.trl.sft --dataset train.jsonl --model M --output-dir D

runs the same training function as ``tune train FILE --backend trl`` (see
:mod:`synthtune.plugins.trl.trainer`), once per process; accelerate (or torchrun) sets up the
distributed state, only the main process writes files and prints the result as one JSON line.
Every trainer setting is a flag (``--learning-rate 1e-4``) or a key of a ``--config`` TOML/JSON file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from synthtune.core.errors import ConfigError, SynthtuneError
from synthtune.plugins.trl.settings import TrlTrainSettings
from synthtune.plugins.trl.trainer import default_output_dir, train_sft


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m synthtune.plugins.trl.sft",
        description="Fine-tune a causal LM on a synthtune dataset with TRL (LoRA by default). "
        "Run it under `accelerate launch -m synthtune.plugins.trl.sft ...` for several GPUs or nodes.",
    )
    parser.add_argument(
        "--dataset", required=True, type=Path, help="training JSONL (chat or prompt/completion)"
    )
    parser.add_argument("--validation", type=Path, help="validation JSONL")
    parser.add_argument("--config", type=Path, help="a TOML or JSON file of trainer settings")
    for name, field in TrlTrainSettings.model_fields.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="VALUE", help=field.description)
    return parser


def settings_from_args(args: argparse.Namespace) -> TrlTrainSettings:
    """Settings from ``--config`` with command-line flags on top, validated like a preset's."""
    values: dict[str, Any] = {}
    if args.config is not None:
        try:
            text = args.config.read_text(encoding="utf-8")
            values = tomllib.loads(text) if args.config.suffix == ".toml" else json.loads(text)
        except (OSError, ValueError) as error:
            raise ConfigError(f"--config {args.config}: {error}") from None
    for name in TrlTrainSettings.model_fields:
        value = getattr(args, name)
        if value is not None:
            values[name] = value
    try:
        return TrlTrainSettings.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"trl settings: {problems}") from None


def main(argv: list[str] | None = None) -> int:
    """Train from the command line; print the result as JSON (main process only)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = _parser().parse_args(argv)
    try:
        settings = settings_from_args(args)
        seed = settings.seed if settings.seed is not None else 42
        result = train_sft(
            settings, args.dataset, args.validation, default_output_dir(settings, args.dataset), seed
        )
    except SynthtuneError as error:
        print(f"error: {error}", file=sys.stderr)
        return getattr(error, "exit_code", 1)
    if os.environ.get("RANK", "0") == "0":  # accelerate/torchrun set RANK; print once
        print(result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
