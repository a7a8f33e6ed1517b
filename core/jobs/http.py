"""The HTTP client hosted trainers use for their providers' REST APIs.

It is the ``openai`` client's HTTP stack used as a plain REST client (``client.get/post/delete``
with ``cast_to=object``): retries with backoff on 408/409/429/5xx and connection errors,
``Retry-After`` honoured, multipart uploads, timeouts, and errors that carry the server's JSON
body. Both Together and Fireworks take a bearer key, which is all this client sends besides the
request: the OpenAI organisation and project headers are left out, so nothing about an OpenAI
account reaches another provider. The key is read by the caller from the environment and lives
only in the client object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
from synthtune.core.errors import SynthtuneError


class ProviderError(SynthtuneError):
    """A provider answered an error or could not be reached (one line, exit code 1)."""


class ProviderRefused(ProviderError):
    """The provider answered 4xx/5xx: ``status`` and the provider's own ``message``."""

    def __init__(self, provider: str, what: str, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{provider} refused {what} (HTTP {status}): {message}")


class ProviderUnreachable(ProviderError):
    """The connection failed (after the client's retries)."""


def server_message(error: openai.APIStatusError) -> str:
    """The server's own message from an error body (``{"error": {"message"}}``, Google-style
    ``{"code", "message"}``), else the client's text."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return " ".join(str(inner["message"]).split())
        if isinstance(inner, str) and inner:
            return inner
    return error.message


class ProviderHTTP:
    """JSON over HTTP to one provider endpoint (``base_url``), with a bearer key."""

    def __init__(
        self, provider: str, base_url: str, api_key: str, *, timeout: float = 120.0, max_retries: int = 5
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self._client = openai.OpenAI(
            api_key=api_key,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=max_retries,
            # Omit() removes a default header; the stubs type the mapping as str -> str.
            default_headers={"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()},  # type: ignore[dict-item]
        )

    def _call(self, what: str, method: str, path: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, method)(path, cast_to=object, **kwargs)
        except openai.APIStatusError as error:
            raise ProviderRefused(self.provider, what, error.status_code, server_message(error)) from None
        except openai.APIConnectionError as error:
            raise ProviderUnreachable(
                f"lost the connection to {self.base_url} ({what}): {str(error).rstrip('.')}"
            ) from None

    def get(self, path: str, what: str, params: dict[str, Any] | None = None) -> Any:
        return self._call(what, "get", path, options={"params": params or {}})

    def post(
        self, path: str, what: str, body: dict[str, Any] | None = None, params: dict[str, Any] | None = None
    ) -> Any:
        return self._call(what, "post", path, body=body or {}, options={"params": params or {}})

    def upload(self, path: str, what: str, file: Path, fields: dict[str, str], field: str = "file") -> Any:
        """A multipart/form-data POST of ``file`` (as ``field``) with ``fields``."""
        with file.open("rb") as handle:
            return self._call(
                what,
                "post",
                path,
                body=fields,
                files=[(field, (file.name, handle, "application/octet-stream"))],
                options={"headers": {"Content-Type": "multipart/form-data"}},
            )
