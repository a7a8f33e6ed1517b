"""The ``local`` plugin's endpoint: the model file, checked before any work.

The id is ``local/`` + the file's name and size (a model moved or copied keeps its answers; a
re-quantized file of the same name does not), or the ``hf:`` name of a model not downloaded yet
(so ``tune estimate`` never downloads). Its answers have no list price.
"""

from __future__ import annotations

from synthtune.core import Endpoint
from synthtune.core.pricing import user_price
from synthtune.plugins.local.engine import _llama_module, check_memory, model_path
from synthtune.plugins.local.settings import LocalGenerateSettings


def endpoint(settings: LocalGenerateSettings) -> Endpoint:
    path = model_path(settings, download=False)
    _llama_module()
    priced = user_price(settings.model) is not None
    if path is None:  # an hf: model to download when the run starts
        return Endpoint(id=f"local/{settings.model}", priced=priced)
    check_memory(path)
    return Endpoint(id=f"local/{path.name}/{path.stat().st_size}", priced=priced)
