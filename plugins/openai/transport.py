"""Two ways to POST ``/chat/completions``: a lean aiohttp path, or the official ``openai`` client.

Both give the engine the same :class:`Reply` (status, headers, parsed completion or what was wrong
with the body) and raise :class:`TransportError` for timeouts and connection failures. Retries
are the engine's own: the openai client is built with ``max_retries=0``.

Why two: on a 2-core machine at 64 requests in flight, the openai client spends about 1.3 ms of
CPU per request (httpx2 request building, pydantic response models) against about 0.3 ms for a
bare aiohttp request, which caps throughput at 100 ms latency well below what the network allows
(figures in README, Benchmarks). ``direct`` sends the same JSON body the openai client would (it
is checked against the official request schema in the tests) with the same headers that matter
(``Authorization``, ``Content-Type``) and reads the same response fields.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from synthtune.plugins.openai.client import make_async_client, resolve_api_key, resolve_base_url
from synthtune.plugins.openai.reachability import connection_reason
from yarl import URL

DEFAULT_BASE_URL = "https://api.openai.com/v1"
USER_AGENT = "synthtune/0.1 (+aiohttp)"


@dataclass(slots=True)
class Completion:
    """The fields synthtune keeps from a chat completion."""

    text: str | None
    finish_reason: str | None
    model: str | None
    response_id: str | None
    prompt_tokens: int
    completion_tokens: int
    refusal: str | None = None


@dataclass(slots=True)
class Reply:
    """An HTTP answer: ``completion`` on a readable 2xx, else ``malformed`` or ``error`` says why."""

    status: int
    headers: Mapping[str, str]
    completion: Completion | None = None
    malformed: str | None = None
    error: str | None = None
    code: str | None = None  # the error body's ``code`` (else its ``type``), e.g. insufficient_quota


class TransportError(Exception):
    """No HTTP answer: a timeout or a connection failure. ``reason`` says which kind of
    connection failure (see :func:`~synthtune.plugins.openai.reachability.connection_reason`)."""

    def __init__(self, kind: Literal["timeout", "connection"], detail: str, reason: str = "other") -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.reason = "timeout" if kind == "timeout" else reason


class Transport(Protocol):
    async def post_chat(self, body: dict[str, Any]) -> Reply: ...

    async def aclose(self) -> None: ...


class Malformed(Exception):
    """A 2xx body that is not a usable chat completion."""


def completion_from_json(data: Any) -> Completion:
    """Read a chat completion from its decoded JSON; raise :class:`Malformed` if it is not one."""
    try:
        choice = data["choices"][0]
        message = choice["message"]
        text = message.get("content")
        usage = data.get("usage") or {}
        if text is not None and not isinstance(text, str):
            raise Malformed("message content is not a string")
        return Completion(
            text=text,
            finish_reason=choice.get("finish_reason"),
            model=data.get("model"),
            response_id=data.get("id"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            refusal=message.get("refusal"),
        )
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
        raise Malformed(f"not a chat completion ({type(error).__name__}: {error})") from None


def error_message(data: Any, fallback: str) -> str:
    """The ``error.message`` of an OpenAI error body, else ``fallback``."""
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return fallback


def error_code(data: Any) -> str | None:
    """The ``error.code`` of an OpenAI error body, else its ``error.type``, else None."""
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict):
            for name in ("code", "type"):
                value = inner.get(name)
                if isinstance(value, str) and value:
                    return value
    return None


class DirectTransport:
    """Chat completions over one shared aiohttp session (keep-alive pool of ``max_connections``)."""

    def __init__(
        self, *, base_url: str | None, api_key_env: str, timeout: float, max_connections: int
    ) -> None:
        base = resolve_base_url(base_url)
        key = resolve_api_key(api_key_env, base)
        self.url = (base or DEFAULT_BASE_URL).rstrip("/") + "/chat/completions"
        self._headers = {
            "Authorization": f"Bearer {key}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
        # Proxy settings from the environment are read once here: aiohttp's trust_env would
        # look them up in a worker thread for every request.
        try:
            proxy, proxy_auth = get_env_proxy_for_url(URL(self.url))
        except LookupError:
            proxy, proxy_auth = None, None
        self._session = aiohttp.ClientSession(
            connector=connector,
            headers=self._headers,
            timeout=self._timeout,
            proxy=proxy,
            proxy_auth=proxy_auth,
        )
        return self._session

    async def post_chat(self, body: dict[str, Any]) -> Reply:
        session = self._session or self._open()
        try:
            async with session.post(self.url, data=json.dumps(body, ensure_ascii=False).encode()) as response:
                raw = await response.read()
                status, headers = response.status, response.headers
                content_type = response.content_type
        except TimeoutError as error:
            raise TransportError("timeout", str(error) or "the request timed out") from None
        except aiohttp.ClientError as error:
            detail = f"{type(error).__name__}: {error}"
            raise TransportError("connection", detail, connection_reason(error)) from None
        try:
            data = json.loads(raw)
        except ValueError:
            if 200 <= status < 300:
                what = f"{len(raw)} bytes of {content_type}" if content_type else f"{len(raw)} bytes"
                return Reply(status, headers, malformed=f"body is not JSON ({what})")
            return Reply(status, headers, error=raw[:200].decode("utf-8", "replace") or f"HTTP {status}")
        if not 200 <= status < 300:
            return Reply(status, headers, error=error_message(data, f"HTTP {status}"), code=error_code(data))
        try:
            return Reply(status, headers, completion=completion_from_json(data))
        except Malformed as error:
            return Reply(status, headers, malformed=str(error))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _completion_from_model(completion: Any) -> Completion:
    try:
        choice = completion.choices[0]
        message = choice.message
        text = message.content
        usage = completion.usage
        if text is not None and not isinstance(text, str):
            raise Malformed("message content is not a string")
        return Completion(
            text=text,
            finish_reason=choice.finish_reason,
            model=completion.model,
            response_id=completion.id,
            prompt_tokens=int(usage.prompt_tokens or 0) if usage else 0,
            completion_tokens=int(usage.completion_tokens or 0) if usage else 0,
            refusal=getattr(message, "refusal", None),
        )
    except (IndexError, TypeError, AttributeError, ValueError) as error:
        raise Malformed(f"not a chat completion ({type(error).__name__}: {error})") from None


class OpenAIClientTransport:
    """Chat completions through the official ``openai`` client (aiohttp or httpx transport),
    reading headers through ``with_raw_response``."""

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key_env: str,
        timeout: float,
        max_connections: int,
        http: Literal["aiohttp", "httpx"],
    ) -> None:
        import openai  # only this transport needs it (a second or more to import)

        try:
            self.client = make_async_client(
                base_url=base_url,
                api_key_env=api_key_env,
                timeout=timeout,
                max_retries=0,
                max_connections=max_connections,
                transport=http,
            )
        except openai.OpenAIError as error:
            raise RuntimeError(str(error)) from None

    async def post_chat(self, body: dict[str, Any]) -> Reply:
        import openai

        try:
            raw = await self.client.chat.completions.with_raw_response.create(**body)
        except openai.APIStatusError as error:
            return Reply(
                error.status_code,
                error.response.headers,
                error=error_message(error.body, error.message),
                code=error_code(error.body),
            )
        except openai.APITimeoutError as error:
            raise TransportError("timeout", str(error)) from None
        except openai.APIConnectionError as error:
            detail = f"{type(error).__name__}: {error}"
            raise TransportError("connection", detail, connection_reason(error)) from None
        except openai.APIResponseValidationError as error:  # only with strict validation
            return Reply(error.status_code, error.response.headers, malformed=str(error))
        try:
            parsed = raw.parse()
        except (ValueError, TypeError) as error:
            return Reply(raw.status_code, raw.headers, malformed=f"body is not JSON ({error})")
        try:
            return Reply(raw.status_code, raw.headers, completion=_completion_from_model(parsed))
        except Malformed as error:
            return Reply(raw.status_code, raw.headers, malformed=str(error))

    async def aclose(self) -> None:
        await self.client.close()


def make_transport(
    kind: Literal["direct", "aiohttp", "httpx"],
    *,
    base_url: str | None,
    api_key_env: str,
    timeout: float,
    max_connections: int,
) -> Transport:
    """The transport a ``transport`` setting names."""
    if kind == "direct":
        return DirectTransport(
            base_url=base_url, api_key_env=api_key_env, timeout=timeout, max_connections=max_connections
        )
    return OpenAIClientTransport(
        base_url=base_url,
        api_key_env=api_key_env,
        timeout=timeout,
        max_connections=max_connections,
        http=kind,
    )
