"""Finding what ``generate.model`` and ``generate.adapter`` name, before anything heavy loads.

- a model folder (``config.json``): loaded as is;
- a LoRA adapter folder (``adapter_config.json``, as the ``trl`` trainer writes): its base model is
  ``base_model_name_or_path`` from that file (a folder, or a Hugging Face name); a base that is
  gone is a one-line error naming both;
- a ``.gguf`` file: loaded by transformers (``gguf_file=``, needs the ``gguf`` package) and
  dequantised to float32;
- anything else: a Hugging Face model name (taken from the local cache; set ``HF_HUB_OFFLINE=1``
  to be sure nothing is downloaded).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from pydantic import BaseModel
from synthtune.core import Endpoint
from synthtune.core.errors import ConfigError
from synthtune.core.pricing import user_price
from synthtune.plugins.transformers.settings import TransformersGenerateSettings

INSTALL = "pip install torch==2.13.0 && pip install -e '.[local]'"
ADAPTER_CONFIG = "adapter_config.json"
FINGERPRINT = "synthtune-fingerprint"  # written by the trl trainer: what decided the weights
WEIGHTS = (".safetensors", ".bin", ".gguf")


class ModelSpec(BaseModel):
    """What to load: ``base`` (a folder or a Hub name), maybe a GGUF file in it, maybe an adapter."""

    base: str
    gguf_file: str | None = None
    adapter: str | None = None

    @property
    def label(self) -> str:
        name = self.gguf_file or Path(self.base.rstrip("/")).name or self.base
        return f"{name}+{Path(self.adapter).name}" if self.adapter else name


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or os.path.isabs(name) or name.count("/") > 1


def adapter_base(folder: Path) -> str:
    """The base model an adapter folder names; ConfigError if the file is unreadable or has none."""
    config_file = folder / ADAPTER_CONFIG
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(f"adapter {folder}: cannot read {ADAPTER_CONFIG}: {error}") from None
    base = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(base, str) or not base:
        raise ConfigError(
            f"adapter {folder}: {ADAPTER_CONFIG} names no base_model_name_or_path; give the base "
            "model yourself (generate.model with generate.adapter, or --base)"
        )
    return base


def checked_base(base: str, adapter: Path | None, where: str = "generate.model") -> str:
    """A base model that exists: a folder with config.json, or a Hub name. ``where`` names the
    setting (or option) that gives it, for the error message."""
    expanded = Path(os.path.expanduser(base))
    whose = f"adapter {adapter}: its base model" if adapter is not None else where
    if expanded.is_dir():
        if not (expanded / "config.json").is_file():
            raise ConfigError(f"{whose} {base!r} is a folder without config.json (not a model)")
        return str(expanded)
    if _looks_like_path(base) or expanded.exists():
        fix = f" (set {where} to where the base model is now)" if adapter is not None else ""
        raise ConfigError(f"{whose} {base!r} is missing: no such folder{fix}")
    return base  # a Hugging Face model name


def resolve(settings: TransformersGenerateSettings) -> ModelSpec:
    """The base model, GGUF file and adapter the settings name (see the module doc)."""
    name = settings.model
    path = Path(os.path.expanduser(name))
    adapter = Path(os.path.expanduser(settings.adapter)) if settings.adapter else None
    if adapter is not None and not (adapter / ADAPTER_CONFIG).is_file():
        what = "no such folder" if not adapter.exists() else f"no {ADAPTER_CONFIG} in it"
        raise ConfigError(f"generate.adapter {settings.adapter!r}: {what} (not a PEFT adapter folder)")
    if name.endswith(".gguf"):
        if not path.is_file():
            raise ConfigError(f"generate.model {name!r}: no such GGUF file {path}")
        if importlib.util.find_spec("gguf") is None:
            raise ConfigError(
                f"generate.model {name!r} is a GGUF file, which needs the gguf package: {INSTALL}"
            )
        spec = ModelSpec(base=str(path.parent), gguf_file=path.name)
    elif path.is_dir() and (path / ADAPTER_CONFIG).is_file() and adapter is None:
        spec = ModelSpec(base=checked_base(adapter_base(path), path), adapter=str(path))
    else:
        if path.is_dir() and not (path / "config.json").is_file():
            raise ConfigError(
                f"generate.model {name!r}: {path} has neither config.json nor {ADAPTER_CONFIG} "
                "(not a model or adapter folder)"
            )
        spec = ModelSpec(base=checked_base(name, None))
        if adapter is not None:
            spec.adapter = str(adapter)
    modules = ["torch", "transformers"] + (["peft"] if spec.adapter else [])
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"the transformers plugin needs {module}: {INSTALL}")
    return spec


def _folder_identity(folder: Path) -> str:
    """What tells this folder's weights apart: the trl trainer's fingerprint, else the weight
    files' names, sizes and modification times."""
    marker = folder / FINGERPRINT
    if marker.is_file():
        return marker.read_text().strip()
    parts = sorted(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
        for p in folder.iterdir()
        if p.is_file() and p.name.endswith(WEIGHTS)
    )
    return ";".join(parts)


def identity(spec: ModelSpec) -> str:
    """A short digest of the weights ``spec`` loads (see :func:`_folder_identity`)."""
    parts: list[str] = []
    base = Path(spec.base)
    if spec.gguf_file:
        gguf = base / spec.gguf_file
        parts.append(f"{gguf.name}:{gguf.stat().st_size}")
    elif base.is_dir():
        parts.append(_folder_identity(base))
    else:
        parts.append(spec.base)
    if spec.adapter:
        parts.append(_folder_identity(Path(spec.adapter)))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


def endpoint(settings: TransformersGenerateSettings) -> Endpoint:
    """``transformers/LABEL/DIGEST``: a retrained adapter in the same folder gets new answers."""
    spec = resolve(settings)
    return Endpoint(
        id=f"transformers/{spec.label}/{identity(spec)}", priced=user_price(settings.model) is not None
    )
