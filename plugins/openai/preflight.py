"""The ``openai`` plugin's check before a run spends anything: the key is set (or the server is
one that needs none) and the server answers one cheap request, ``GET /models``, within a few
seconds. Only a missing key, a refused key (HTTP 401) or no answer at all stop the run: a
server without ``/models`` (404) or a key not allowed to list models (403) may still answer
chat completions."""

from __future__ import annotations

from synthtune.core.errors import ConfigError
from synthtune.core.plugins import one_line

# Seconds to wait for the server: long enough for a distant API, short enough that a wrong
# address is reported at once.
PREFLIGHT_TIMEOUT = 5.0


def check_endpoint(base_url: str | None, api_key_env: str, *, timeout: float = PREFLIGHT_TIMEOUT) -> None:
    """A ConfigError (one line, never the key) unless the endpoint can be used."""
    import openai
    from synthtune.plugins.openai.client import resolve_api_key, resolve_base_url

    base = resolve_base_url(base_url)
    key = resolve_api_key(api_key_env, base)
    where = (base or "https://api.openai.com/v1").rstrip("/")
    client = openai.OpenAI(api_key=key, base_url=base, timeout=timeout, max_retries=0)
    try:
        client.models.with_raw_response.list()
    except openai.APITimeoutError:
        raise ConfigError(
            f"cannot reach {where}: no answer within {timeout:g}s; start the server, or fix "
            "generate.base_url / $OPENAI_BASE_URL"
        ) from None
    except openai.APIConnectionError as error:
        reason = one_line(error.__cause__ or error)
        raise ConfigError(
            f"cannot reach {where} ({reason}): start the server, or fix generate.base_url / $OPENAI_BASE_URL"
        ) from None
    except openai.AuthenticationError:
        raise ConfigError(f"{where} refused the key in ${api_key_env} (HTTP 401): check the key") from None
    except openai.APIStatusError:
        return  # it answered: /models may be missing or not allowed for this key
    finally:
        client.close()
