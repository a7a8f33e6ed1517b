"""The fake OpenAI-compatible server: chat completions (with rate limits and injected faults),
files, batches and fine-tuning jobs."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web
from synthtune.core.openai_schemas import validator_for
from synthtune.core.testing.batches import BatchesAPI
from synthtune.core.testing.fine_tuning import FineTuningAPI
from synthtune.core.testing.limits import Faults, ServerLimits
from synthtune.core.testing.replies import (
    Reply,
    Responder,
    body_digest,
    completion_body,
    error_response,
)


class FakeOpenAI(BatchesAPI, FineTuningAPI):
    """A fake OpenAI-compatible server, running in a background thread.

    Use as a context manager (or call :meth:`start` / :meth:`stop`); point clients at
    :attr:`base_url`. ``responder`` maps a request body to a :class:`Reply` or a text.
    """

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        latency: float = 0.0,
        jitter: float = 0.0,
        schema_path: Path | None = None,
        seed: int = 0,
        rpm: float | None = None,
        tpm: float | None = None,
        burst_seconds: float = 1.0,
        faults: Faults | None = None,
        validate: bool = True,
        keep_requests: bool = True,
    ) -> None:
        """``rpm``/``tpm`` enforce rate limits (see :class:`ServerLimits`; a request costs its
        prompt characters / 4 plus its completion tokens); ``faults`` injects errors;
        ``validate=False`` and ``keep_requests=False`` make a lean server for benchmarks."""
        super().__init__(responder, latency=latency, jitter=jitter, schema_path=schema_path, seed=seed)
        self._chat_validator = validator_for(self.document, "CreateChatCompletionRequest")
        self._init_batches()
        self._init_fine_tuning()
        self.validate = validate
        self.keep_requests = keep_requests
        self.limits = ServerLimits(rpm, tpm, burst_seconds) if (rpm or tpm) else None
        self.faults = faults
        self.requests_total = 0
        self.attempts: Counter[str] = Counter()  # body digest -> requests seen
        self.status_counts: Counter[int] = Counter()  # HTTP status -> responses sent
        self.faults_injected: Counter[str] = Counter()
        self.chat_requests: list[dict[str, Any]] = []
        self.answered: Counter[str] = Counter()  # body digest -> 200 answers to a live client
        self.headers_seen: list[dict[str, str]] = []
        # GET /v1/models: the ids listed, how often it was asked, and the status it answers
        # (a test sets 401 to play a server that refuses the key).
        self.model_ids: list[str] = ["gpt-4.1-mini", "gpt-4.1", "gpt-4o-mini"]
        self.models_requests = 0
        self.models_status = 200

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._file_routes(app)
        self._batch_routes(app)
        self._fine_tuning_routes(app)
        app.router.add_get("/_fake/stats", self._stats)

    @staticmethod
    def completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        """A chat.completion object answering ``body`` (kept as a method for subclasses)."""
        return completion_body(body, reply)

    # -- counters -------------------------------------------------------------------------------

    @property
    def chat_count(self) -> int:
        return self.requests_total

    def answered_twice(self) -> list[str]:
        """Digests of request bodies that got a 200 answer more than once."""
        return [digest for digest, n in self.answered.items() if n > 1]

    # -- handlers ---------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self._send(error_response(400, "body is not JSON"))
        digest = body_digest(body)
        with self._lock:
            self.requests_total += 1
            attempt = self.attempts[digest]
            self.attempts[digest] += 1
            if self.keep_requests:
                self.chat_requests.append(body)
                self.headers_seen.append(
                    {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
                )
        if self.validate:
            problems = [e.message for e in self._chat_validator.iter_errors(body)]
            if problems:
                self.schema_errors.append(f"{problems[0]} in {json.dumps(body)[:200]}")
                return self._send(
                    error_response(400, f"request does not match CreateChatCompletionRequest: {problems[0]}")
                )
        reply = self.responder(body)
        if isinstance(reply, str):
            reply = Reply(text=reply)
        limit_headers: dict[str, str] = {}
        if self.limits is not None:
            admitted, limit_headers = self.limits.admit(self.token_cost(body, reply))
            if not admitted:
                return self._send(error_response(429, "Rate limit reached (fake server)", limit_headers))
        fault = self.faults.pick(digest, attempt) if self.faults else None
        if fault is not None:
            self.faults_injected[fault] += 1
            response = await self._inject(fault, request, limit_headers)
            if response is not None:
                return self._send(response)
        delay = reply.delay if reply.delay is not None else self._delay()
        if delay > 0:
            await asyncio.sleep(delay)
        headers = {**limit_headers, **reply.headers}
        if reply.status != 200:
            return self._send(error_response(reply.status, reply.error_message, headers))
        if request.transport is None or request.transport.is_closing():
            return self._send(web.Response(status=499))  # the client is gone: nothing was delivered
        if reply.raw is not None:
            return self._send(web.Response(body=reply.raw, content_type="application/json"))
        with self._lock:
            self.answered[digest] += 1
        return self._send(web.json_response(completion_body(body, reply), headers=headers))

    def _send(self, response: web.StreamResponse) -> web.StreamResponse:
        self.status_counts[response.status] += 1
        return response

    async def _inject(
        self, fault: str, request: web.Request, headers: dict[str, str]
    ) -> web.StreamResponse | None:
        """The response for an injected fault (``None``: answer normally after all)."""
        assert self.faults is not None
        await asyncio.sleep(self._delay())
        if fault == "server_error":
            return error_response(500, "injected server error", headers)
        if fault == "rate_limit":
            wait = self.faults.retry_after
            retry = {
                "retry-after-ms": str(max(1, round(wait * 1000))),
                "retry-after": str(max(1, round(wait))),
            }
            return error_response(429, "injected rate limit", {**headers, **retry})
        if fault == "malformed":
            if self.faults_injected[fault] % 2:
                return web.Response(body=b'{"id": "chatcmpl-broken", "choi', content_type="application/json")
            return web.json_response({"id": "chatcmpl-broken", "object": "chat.completion"})
        # timeout: hold the request until the client gives up (or ``hang`` passes)
        deadline = time.monotonic() + self.faults.hang
        while time.monotonic() < deadline:
            if request.transport is None or request.transport.is_closing():
                return web.Response(status=499)
            await asyncio.sleep(0.02)
        return None

    @staticmethod
    def token_cost(body: dict[str, Any], reply: Reply) -> int:
        """What a request costs against the tokens-per-minute budget: the usage it reports."""
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
        return max(1, prompt_chars // 4) + max(1, len(reply.text) // 4)

    async def _models(self, request: web.Request) -> web.Response:
        """The model list (``GET /v1/models``), which clients ask to check a server is there."""
        with self._lock:
            self.models_requests += 1
        if self.models_status != 200:
            return error_response(self.models_status, "Incorrect API key provided (fake server)")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.model_ids]
        return web.json_response({"object": "list", "data": data})

    async def _stats(self, request: web.Request) -> web.Response:
        """Counters for benchmarks that run the server in another process."""
        with self._lock:
            return web.json_response(
                {
                    "requests": self.requests_total,
                    "status": {str(k): v for k, v in self.status_counts.items()},
                    "faults": dict(self.faults_injected),
                    "answered_twice": len(self.answered_twice()),
                }
            )
