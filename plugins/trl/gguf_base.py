"""A ``.gguf`` base model for the trl trainer: dequantised once into a plain checkpoint.

transformers reads a GGUF file (``gguf_file=``, with the ``gguf`` package) and dequantises it to
float32, but a model loaded that way can be neither trained nor saved ("quantized with gguf"). So
the file is loaded once, its quantisation record dropped, and the weights saved as an ordinary
safetensors checkpoint (with the tokenizer and chat template) in ``OUTPUT_DIR/base-model``; the
trainer starts from that folder, and the adapter's ``adapter_config.json`` names it as its base,
so the adapter folder alone is enough to load the tuned model later (``tune try``, vLLM).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

from synthtune.core.errors import ConfigError

log = logging.getLogger("synthtune.trl")

BASE_FOLDER = "base-model"
SOURCE_FILE = "synthtune-gguf-source"  # written last: the copy is complete and of this file


def is_gguf(model: str) -> bool:
    return model.endswith(".gguf")


def _source_line(path: Path) -> str:
    return f"{path.resolve()}:{path.stat().st_size}\n"


def converted(model: str, output_dir: Path, libs: SimpleNamespace) -> str:
    """The checkpoint folder to train from for the GGUF file ``model`` (made on first use)."""
    path = Path(os.path.expanduser(model))
    if not path.is_file():
        raise ConfigError(f"trl: model {model!r}: no such GGUF file {path}")
    if importlib.util.find_spec("gguf") is None:
        raise ConfigError(
            f"trl: model {model!r} is a GGUF file, which needs the gguf package: pip install gguf"
        )
    folder = (output_dir / BASE_FOLDER).resolve()
    marker = folder / SOURCE_FILE
    if marker.is_file() and marker.read_text() == _source_line(path):
        return str(folder)
    if os.environ.get("RANK", "0") != "0":  # under accelerate: the main process converts
        while not (marker.is_file() and marker.read_text() == _source_line(path)):
            time.sleep(1)
        return str(folder)
    started = time.monotonic()
    log.info("trl: reading %s into a float32 checkpoint in %s (once)", path.name, folder)
    transformers = libs.transformers
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model_obj = transformers.AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, dtype=libs.torch.float32
        )
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"trl: cannot read the GGUF file {path}: {first}") from None
    # Loaded from GGUF the model counts as quantized, which blocks training and saving; the
    # weights are already plain float32 tensors.
    model_obj.hf_quantizer = None
    if hasattr(model_obj.config, "quantization_config"):
        del model_obj.config.quantization_config
    model_obj.config.name_or_path = str(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    model_obj.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    marker.write_text(_source_line(path))
    log.info("trl: %s ready in %.0f s", folder, time.monotonic() - started)
    return str(folder)
