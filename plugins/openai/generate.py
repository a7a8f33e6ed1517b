"""Chat-completion generation against any OpenAI-compatible server.

A fixed pool of ``concurrency`` workers pulls requests from the core's stream; each answer is
handed back the moment it arrives. Retries (429, 5xx, timeouts, connection errors) are the
openai client's own, with its exponential backoff and ``Retry-After`` handling.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Literal

import openai
from pydantic import Field
from synthtune.core.errors import ConfigError, GenerationError
from synthtune.core.models import GenerationOutcome, GenerationRequest, RunContext, Usage
from synthtune.core.settings import GenerateSettings
from synthtune.plugins.openai.client import make_async_client

_DONE = object()


class OpenAIGenerateSettings(GenerateSettings):
    """``[generate]`` settings of the ``openai`` plugin."""

    model: str = "gpt-4.1-mini"
    base_url: str | None = Field(
        default=None, description="OpenAI-compatible endpoint; default $OPENAI_BASE_URL or OpenAI"
    )
    api_key_env: str = Field(default="OPENAI_API_KEY", description="variable holding the key")
    concurrency: int = Field(default=16, ge=1, le=2048)
    max_retries: int = Field(default=5, ge=0, le=50)
    timeout: float = Field(default=120.0, gt=0, description="seconds per request")
    token_limit_field: Literal["max_completion_tokens", "max_tokens"] = Field(
        default="max_completion_tokens",
        description="how max_tokens is sent: older servers only know 'max_tokens'",
    )
    transport: Literal["aiohttp", "httpx"] = "aiohttp"
    # Batch mode (see batch.py): the Batch API instead of one request per completion.
    mode: Literal["online", "batch"] = Field(
        default="online", description="'batch': OpenAI Batch API, half price, answers within 24h"
    )
    batch_poll_interval: float = Field(default=30.0, gt=0, description="seconds between batch polls")
    batch_max_wait: float | None = Field(
        default=None, ge=0, description="stop waiting after this many seconds (batches keep running)"
    )
    batch_max_requests: int = Field(default=50_000, ge=1, le=50_000, description="requests per batch")
    batch_max_bytes: int = Field(
        default=200_000_000, ge=1, le=200_000_000, description="input file bytes per batch (API: 200 MB)"
    )


def request_body(request: GenerationRequest, settings: OpenAIGenerateSettings) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` for one request."""
    params = request.params.model_dump(exclude_none=True)
    max_tokens = params.pop("max_tokens", None)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [m.model_dump(exclude_none=True) for m in request.messages],
        **params,
    }
    if max_tokens is not None:
        body[settings.token_limit_field] = max_tokens
    return body


def _fatal(error: openai.APIStatusError) -> bool:
    """Errors that every other request would hit too: stop the run instead of failing each."""
    return isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError | openai.NotFoundError)


async def _answer(
    client: openai.AsyncOpenAI, request: GenerationRequest, settings: OpenAIGenerateSettings
) -> GenerationOutcome:
    assert request.key is not None
    body = request_body(request, settings)
    try:
        completion = await client.chat.completions.create(**body)
    except openai.APIStatusError as error:
        if _fatal(error):
            raise GenerationError(
                f"{settings.model}: the server refused the request ({error.status_code}): {_message(error)}"
            ) from None
        return GenerationOutcome(key=request.key, error=f"HTTP {error.status_code}: {_message(error)}")
    except openai.APIConnectionError as error:  # includes timeouts, after the retries
        return GenerationOutcome(key=request.key, error=f"{type(error).__name__}: {error}")
    except openai.APIResponseValidationError as error:
        return GenerationOutcome(key=request.key, error=f"malformed response: {error}")
    if not completion.choices:
        return GenerationOutcome(key=request.key, error="response had no choices")
    choice = completion.choices[0]
    message = choice.message
    if message.content is None:
        refusal = getattr(message, "refusal", None)
        return GenerationOutcome(
            key=request.key, error=f"no content ({'refusal: ' + refusal if refusal else 'empty'})"
        )
    usage = completion.usage
    return GenerationOutcome(
        key=request.key,
        text=message.content,
        finish_reason=choice.finish_reason,
        model=completion.model,
        usage=Usage(
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
        ),
        response_id=completion.id,
    )


def _message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return error.message


async def generate_chat(
    requests: AsyncIterator[GenerationRequest],
    settings: OpenAIGenerateSettings,
    context: RunContext,
) -> AsyncIterator[GenerationOutcome]:
    """Answer every request with ``settings.concurrency`` workers; yield outcomes as they land."""
    try:
        client = make_async_client(
            base_url=settings.base_url,
            api_key_env=settings.api_key_env,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            max_connections=settings.concurrency,
            transport=settings.transport,
        )
    except openai.OpenAIError as error:
        raise ConfigError(f"openai client: {error}") from None

    results: asyncio.Queue[Any] = asyncio.Queue()
    feed_lock = asyncio.Lock()
    exhausted = False

    async def next_request() -> GenerationRequest | None:
        nonlocal exhausted
        async with feed_lock:  # an async generator may not be advanced by two tasks at once
            if exhausted:
                return None
            request = await anext(requests, None)
            exhausted = request is None
            return request

    async def worker() -> None:
        try:
            while (request := await next_request()) is not None:
                await results.put(await _answer(client, request, settings))
        except BaseException as error:
            await results.put(error)
            raise
        finally:
            await results.put(_DONE)

    async with client:
        workers = [asyncio.create_task(worker()) for _ in range(settings.concurrency)]
        running = len(workers)
        try:
            while running:
                item = await results.get()
                if item is _DONE:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
