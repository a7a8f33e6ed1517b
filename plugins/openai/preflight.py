"""The ``openai`` plugin's check before a run spends anything: the key is set (or the server is
one that needs none) and the server answers one cheap request, ``GET /models``, within a few
seconds. Only a missing key, a refused key (HTTP 401) or no answer at all stop the run: a
server without ``/models`` (404) or a key not allowed to list models (403) may still answer
chat completions."""

from __future__ import annotations

import socket

from synthtune.core.errors import ConfigError
from synthtune.plugins.openai.servers import ProbeError

# Seconds to wait for the server: long enough for a distant API, short enough that a wrong
# address is reported at once.
PREFLIGHT_TIMEOUT = 5.0


def check_endpoint(base_url: str | None, api_key_env: str, *, timeout: float = PREFLIGHT_TIMEOUT) -> None:
    """A ConfigError (one line, never the key) unless the endpoint can be used.

    One plain HTTP GET (the same light probe server detection uses): importing the ``openai``
    client for it would cost more than the request."""
    from synthtune.plugins.openai.client import resolve_api_key, resolve_base_url
    from synthtune.plugins.openai.servers import get_models
    from synthtune.plugins.openai.transport import DEFAULT_BASE_URL

    base = resolve_base_url(base_url)
    key = resolve_api_key(api_key_env, base)
    where = (base or DEFAULT_BASE_URL).rstrip("/")
    try:
        status, _, _ = get_models(where, key, timeout, keep=True)
    except ProbeError as error:
        raise ConfigError(_unreachable(where, error, timeout)) from None
    if status == 401:
        raise ConfigError(f"{where} refused the key in ${api_key_env} (HTTP 401): check the key")
    # Any other answer will do: /models may be missing (404) or not allowed for this key (403).


def _unreachable(where: str, error: ProbeError, timeout: float) -> str:
    """One line: which server, why it cannot be reached (refused, unknown host, TLS, no answer),
    and what to do, in the words a failure during the run uses."""
    from synthtune.plugins.openai.reachability import UNREACHABLE, connection_reason

    cause = error.__cause__ or error
    detail = str(getattr(cause, "reason", cause))
    if isinstance(cause, socket.timeout | TimeoutError) or "timed out" in detail:
        reason, what = "timeout", f"no answer within {timeout:g}s"
    else:
        reason = connection_reason(cause)
        what = UNREACHABLE[reason]
    hint = {
        "refused": "is the server running, and on this port?",
        "dns": "check the host name",
        "tls": "check the URL's scheme and the server's certificate",
    }.get(reason, "start the server, or check the address")
    return (
        f"generate.base_url: cannot reach the server at {where}: {what} ({detail}); {hint} "
        "(generate.base_url / $OPENAI_BASE_URL)"
    )
