"""Token counting with tiktoken, using each model's own encoding.

tiktoken downloads its encoding files on first use. Where that cannot happen (no network), a
clear error says how to point ``TIKTOKEN_CACHE_DIR`` at a folder that has them.
"""

from __future__ import annotations

import functools
import json
import os
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from synthtune.core.errors import ConfigError

if TYPE_CHECKING:
    import tiktoken

# Chat framing overhead, as in the OpenAI cookbook's num_tokens_from_messages.
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING = 3


def base_model(model: str) -> str:
    """``ft:gpt-4o-mini-2024-07-18:org:suffix:id`` -> ``gpt-4o-mini-2024-07-18``."""
    if model.startswith("ft:"):
        return model.split(":")[1]
    return model


def encoding_name(model: str) -> str:
    """The encoding tiktoken uses for ``model``; for models it does not know, o200k_base for
    current OpenAI-style names and cl100k_base for the gpt-3.5/gpt-4 family."""
    import tiktoken  # imported on first use: it is slow to import and most commands never count

    name = base_model(model)
    try:
        return tiktoken.encoding_name_for_model(name)
    except KeyError:
        legacy = name.startswith(("gpt-3.5", "gpt-35", "text-embedding-ada", "davinci", "babbage"))
        modern = name.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5"))
        legacy = legacy or (name.startswith("gpt-4") and not modern)
        return "cl100k_base" if legacy else "o200k_base"


@functools.cache
def get_encoding(name: str) -> tiktoken.Encoding:
    import tiktoken

    try:
        return tiktoken.get_encoding(name)
    except Exception as error:  # tiktoken raises whatever its downloader raised
        where = os.environ.get("TIKTOKEN_CACHE_DIR")
        hint = (
            f"TIKTOKEN_CACHE_DIR={where} does not hold it"
            if where
            else "set TIKTOKEN_CACHE_DIR to a folder holding tiktoken's encoding files"
        )
        raise ConfigError(
            f"cannot load tiktoken encoding {name!r} ({type(error).__name__}): {hint}, "
            "or allow tiktoken to download it once"
        ) from None


def encoding_for(model: str) -> tiktoken.Encoding:
    return get_encoding(encoding_name(model))


_loaders: dict[str, threading.Thread] = {}


def ready(model: str) -> bool:
    """Whether ``model``'s encoding is loaded, or its loading failed (counting then returns at
    once: it raises the ConfigError). Loading one takes about a second of CPU."""
    loader = _loaders.get(model)
    return loader is not None and not loader.is_alive()


def load_in_background(model: str) -> threading.Thread:
    """Start loading ``model``'s encoding in a thread (once), so the event loop is not held
    up for the second it takes; :func:`ready` says when it is done."""
    loader = _loaders.get(model)
    if loader is None:

        def load() -> None:
            try:
                encoding_for(model)
            except Exception:  # noqa: BLE001 - counting raises it again, as a ConfigError
                pass

        loader = _loaders[model] = threading.Thread(target=load, name="tiktoken-load", daemon=True)
        loader.start()
    return loader


def count_text(text: str, model: str) -> int:
    return len(encoding_for(model).encode(text, disallowed_special=()))


def count_messages(messages: Iterable[Mapping[str, Any]], model: str) -> int:
    """Prompt tokens of a chat request, counted as the OpenAI cookbook does."""
    encoding = encoding_for(model)
    total = REPLY_PRIMING
    for message in messages:
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if value is None:
                continue
            if not isinstance(value, str):
                value = json.dumps(value, ensure_ascii=False)
            total += len(encoding.encode(value, disallowed_special=()))
            if key == "name":
                total += TOKENS_PER_NAME
    return total
