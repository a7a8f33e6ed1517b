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
from synthtune.core.testing.personas import Persona
from synthtune.core.testing.personas import persona as persona_named
from synthtune.core.testing.replies import (
    Reply,
    Responder,
    body_digest,
    completion_body,
    error_response,
)

NOT_AN_API_PAGE = (
    "<!DOCTYPE html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>"
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
        persona: str | Persona = "openai",
        models: list[str] | None = None,
    ) -> None:
        """``rpm``/``tpm`` enforce rate limits (see :class:`ServerLimits`; a request costs its
        prompt characters / 4 plus its completion tokens); ``faults`` injects errors;
        ``validate=False`` and ``keep_requests=False`` make a lean server for benchmarks.
        ``persona`` makes it present itself as another server (see :mod:`.personas`: its
        ``/v1/models``, headers and the response formats it takes); ``models`` are the ids its
        ``/v1/models`` lists."""
        super().__init__(responder, latency=latency, jitter=jitter, schema_path=schema_path, seed=seed)
        self._chat_validator = validator_for(self.document, "CreateChatCompletionRequest")
        self._init_batches()
        self._init_fine_tuning()
        self.validate = validate
        self.keep_requests = keep_requests
        self.limits = ServerLimits(rpm, tpm, burst_seconds) if (rpm or tpm) else None
        self.faults = faults
        self.requests_total = 0
        # time.monotonic() when the first chat request arrived (system-wide on Linux: a benchmark
        # in another process compares it with its own clock instead of polling).
        self.first_request_at: float | None = None
        self.attempts: Counter[str] = Counter()  # body digest -> requests seen
        self.status_counts: Counter[int] = Counter()  # HTTP status -> responses sent
        self.faults_injected: Counter[str] = Counter()
        self.chat_requests: list[dict[str, Any]] = []
        self.answered: Counter[str] = Counter()  # body digest -> 200 answers to a live client
        self.headers_seen: list[dict[str, str]] = []
        self.persona = persona_named(persona)
        self.models = models if models is not None else DEFAULT_MODELS.get(self.persona.name, ["model"])
        self.probes: Counter[str] = Counter()  # GET path -> requests (/v1/models, /props, ...)
        self.refused_formats: Counter[str] = Counter()  # response_format shape -> refusals
        self.unread_fields: Counter[str] = Counter()  # token-limit fields the persona ignores
        self.in_flight = 0  # requests sleeping out their latency now (the server's loop only)
        self.most_in_flight = 0
        # GET /v1/models answers this status when it is not 200 (a test sets 401 to play a
        # server that refuses the key).
        self.models_status = 200

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        if self.persona.slots is not None:
            app.router.add_get("/props", self._props)
        if self.persona.ollama:
            app.router.add_get("/api/version", self._ollama_version)
        app.on_response_prepare.append(self._persona_headers)
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
        arrived = time.monotonic()
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self._send(error_response(400, "body is not JSON"))
        digest = body_digest(body)
        with self._lock:
            if self.first_request_at is None:
                self.first_request_at = arrived
            self.requests_total += 1
            attempt = self.attempts[digest]
            self.attempts[digest] += 1
            if self.keep_requests:
                self.chat_requests.append(body)
                self.headers_seen.append(
                    {k.lower(): v for k, v in request.headers.items() if k.lower() != "authorization"}
                )
        refusal = self.persona.refuses(body)
        if refusal is not None:
            self.refused_formats[str(self.persona.response_format_shape(body))] += 1
            return self._send(error_response(*refusal))
        for name in ("max_tokens", "max_completion_tokens"):
            if name in body and name not in self.persona.token_fields:
                self.unread_fields[name] += 1
        if self.validate:
            checked = body if self.persona.name == "openai" else _without_extensions(body)
            problems = [e.message for e in self._chat_validator.iter_errors(checked)]
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
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                await asyncio.sleep(delay)
            finally:
                self.in_flight -= 1
        headers = {**limit_headers, **reply.headers}
        if reply.status != 200:
            return self._send(
                error_response(reply.status, reply.error_message, headers, reply.error_code, reply.error_type)
            )
        if request.transport is None or request.transport.is_closing():
            return self._send(web.Response(status=499))  # the client is gone: nothing was delivered
        if reply.raw is not None:
            return self._send(web.Response(body=reply.raw, content_type="application/json"))
        with self._lock:
            self.answered[digest] += 1
        return self._send(web.json_response(completion_body(body, reply), headers=headers))

    @property
    def models_requests(self) -> int:
        """How many times ``GET /v1/models`` was asked (preflight checks, server detection)."""
        return self.probes["/v1/models"]

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.probes["/v1/models"] += 1
        if self.models_status != 200:
            return self._send(error_response(self.models_status, "Incorrect API key provided (fake server)"))
        if self.persona.owned_by is None:
            return self._send(web.json_response({"detail": "Not Found"}, status=404))
        data = [{**self.persona.model_entry(m), **self.persona.extra_model_fields} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _props(self, request: web.Request) -> web.StreamResponse:
        self.probes["/props"] += 1
        return web.json_response({"total_slots": self.persona.slots, "model_path": self.models[0]})

    async def _ollama_version(self, request: web.Request) -> web.StreamResponse:
        self.probes["/api/version"] += 1
        return web.json_response({"version": "0.12.0"})

    async def _persona_headers(self, request: web.Request, response: web.StreamResponse) -> None:
        for name, value in self.persona.headers.items():
            response.headers.setdefault(name, value)

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
        if fault == "reset":  # drop the connection: the client gets no HTTP answer at all
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=499)
        if fault == "html":
            return web.Response(text=NOT_AN_API_PAGE, content_type="text/html")
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

    async def _stats(self, request: web.Request) -> web.Response:
        """Counters for benchmarks that run the server in another process."""
        with self._lock:
            return web.json_response(
                {
                    "requests": self.requests_total,
                    "status": {str(k): v for k, v in self.status_counts.items()},
                    "faults": dict(self.faults_injected),
                    "answered_twice": len(self.answered_twice()),
                    "first_request_at": self.first_request_at,
                }
            )


DEFAULT_MODELS: dict[str, list[str]] = {
    "openai": ["gpt-4.1", "gpt-4.1-mini", "gpt-4o-mini"],
    "llama-cpp-python": ["/models/SmolLM2-135M-Instruct.Q4_1.gguf"],
    "llama.cpp": ["SmolLM2-135M-Instruct.Q4_1.gguf"],
    "vllm": ["HuggingFaceTB/SmolLM2-135M-Instruct"],
    "ollama": ["smollm2:135m", "llama3.2:latest"],
}


def _without_extensions(body: dict[str, Any]) -> dict[str, Any]:
    """A local server's body as the official schema can judge it: its own response_format shapes
    (``json_object`` with ``schema``) left out."""
    return {k: v for k, v in body.items() if k != "response_format"}
