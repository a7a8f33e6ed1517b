"""The server a run talks to, and what follows from it: settings, structured-output modes and the
endpoint in the cache key.

The server is detected once per run (:func:`~.servers.detect`) and shared between the
``generate_endpoint`` hook and the ``generate`` hook through ``context.extra``. Each detection is
recorded in the run store, so that a run whose every answer is cached can still go on while the
server is down (it keys its requests on the endpoint recorded last time).
"""

from __future__ import annotations

import os

from synthtune.core.endpoint import Endpoint
from synthtune.core.errors import ConfigError
from synthtune.core.models import RunContext
from synthtune.core.pricing import user_price
from synthtune.plugins.openai.client import resolve_base_url
from synthtune.plugins.openai.generate import OpenAIGenerateSettings
from synthtune.plugins.openai.servers import ProbeError, ServerInfo, detect
from synthtune.plugins.openai.transport import DEFAULT_BASE_URL

DETECTED = "openai.servers"  # context.extra: (base URL, model, server setting) -> ServerInfo


def base_url_of(settings: OpenAIGenerateSettings) -> str:
    return resolve_base_url(settings.base_url) or DEFAULT_BASE_URL


def server_info(settings: OpenAIGenerateSettings, context: RunContext) -> ServerInfo:
    """What answers at the settings' base URL (detected once per run; see the module doc)."""
    base = resolve_base_url(settings.base_url)
    found: dict[tuple[str | None, str, str], ServerInfo] = context.extra.setdefault(DETECTED, {})
    ident = (base, settings.model, settings.server)
    if ident in found:
        return found[ident]
    memory = f"server:{base_url_of(settings)}|{settings.model}|{settings.server}"
    try:
        info = detect(base, os.environ.get(settings.api_key_env), settings.model, settings.server)
    except ProbeError as error:
        remembered = context.cache_get(memory)
        if remembered is None:
            raise ConfigError(
                f"generate.base_url: {error}; start the server, or point OPENAI_BASE_URL "
                "(or generate.base_url) at one that runs"
            ) from None
        info = ServerInfo.model_validate_json(remembered)
        context.log.warning(
            "%s; going on as %s answered last time (%s)", error, base_url_of(settings), info.endpoint_id()
        )
    else:
        if info.kind != "openai":
            context.cache_put(memory, info.model_dump_json())
    found[ident] = info
    return info


def effective_settings(settings: OpenAIGenerateSettings, info: ServerInfo) -> OpenAIGenerateSettings:
    """The settings with the server kind's defaults for what the preset and ``--set`` left
    unset, and ``concurrency`` capped at the server's slots."""
    defaults = info.defaults
    if settings.mode == "batch" and not defaults.batch_api:
        raise ConfigError(
            f"generate.mode=batch: a {info.kind} server ({info.host}) has no Batch API; "
            "use generate.mode=online"
        )
    given = settings.model_fields_set
    updates: dict[str, object] = {}
    if "timeout" not in given:
        updates["timeout"] = defaults.timeout
    if "token_limit_field" not in given:
        updates["token_limit_field"] = defaults.token_limit_field
    slots = settings.slots or info.server_slots
    if slots is not None and settings.concurrency > slots:
        updates["concurrency"] = slots
        updates["min_concurrency"] = min(settings.min_concurrency, slots)
    changed = {k: v for k, v in updates.items() if getattr(settings, k) != v}
    return settings.model_copy(update=changed) if changed else settings


def endpoint(settings: OpenAIGenerateSettings, context: RunContext) -> Endpoint | None:
    """The endpoint for the cache key: None for OpenAI itself (its model names are global, and
    every run store made before endpoints were keyed was made against it), else kind, host and
    served model. Answers of local kinds have no list price unless the user's price file names
    the model."""
    info = server_info(settings, context)
    effective_settings(settings, info)  # a setting the server cannot honour fails before any work
    if info.kind == "openai":
        return None
    priced = info.defaults.priced or user_price(settings.model) is not None
    return Endpoint(id=info.endpoint_id(), priced=priced)
