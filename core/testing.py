"""Testing helpers for synthtune and its plugins.

:class:`FakeOpenAI` is a real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions
API, so tests drive the same ``openai`` client code that talks to api.openai.com, with only
``base_url`` changed. It validates every request body against the official request schema,
counts what it answered, and lets a test script the answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
from aiohttp import web
from synthtune.core.fake_limits import Faults, ServerLimits

SCHEMA_PACKAGE = "synthtune.core.schemas"
REQUEST_SCHEMAS = "openai-request-schemas.json"
LINE_SCHEMAS = "openai-finetune-line-schemas.json"


def load_schemas(name: str, path: Path | None = None) -> dict[str, Any]:
    """A schema document, from ``path`` or the copy shipped with synthtune."""
    text = path.read_text() if path else files(SCHEMA_PACKAGE).joinpath(name).read_text()
    return json.loads(text)


def validator_for(document: dict[str, Any], definition: str) -> jsonschema.Draft202012Validator:
    """A validator for one ``$defs`` entry of a schema document."""
    schema = {"$ref": f"#/$defs/{definition}", "$defs": document["$defs"]}
    return jsonschema.Draft202012Validator(schema)


def body_digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class Reply:
    """A scripted answer. ``raw`` replaces the whole body (for malformed responses)."""

    text: str = ""
    status: int = 200
    finish_reason: str = "stop"
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    delay: float | None = None
    error_message: str = "scripted error"


def default_text(body: dict[str, Any], length: int = 1200) -> str:
    """A deterministic answer of about ``length`` characters, different for every body."""
    digest = body_digest(body)
    words = [
        "the",
        "story",
        "turns",
        "when",
        "a",
        "stranger",
        "arrives",
        "and",
        "everything",
        "changes",
        "for",
        "our",
        "hero",
        "who",
        "must",
        "choose",
        "between",
        "love",
        "duty",
    ]
    rng = random.Random(digest)
    out: list[str] = [f"[{digest[:8]}]"]
    size = len(out[0])
    while size < length:
        word = rng.choice(words)
        out.append(word)
        size += len(word) + 1
    return " ".join(out) + "."


Responder = Callable[[dict[str, Any]], "Reply | str"]


class FakeOpenAI:
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
        self.responder = responder or (lambda body: default_text(body))
        self.latency = latency
        self.jitter = jitter
        self._rng = random.Random(seed)
        document = load_schemas(REQUEST_SCHEMAS, schema_path)
        self._chat_validator = validator_for(document, "CreateChatCompletionRequest")
        self.validate = validate
        self.keep_requests = keep_requests
        self.limits = ServerLimits(rpm, tpm, burst_seconds) if (rpm or tpm) else None
        self.faults = faults
        self.requests_total = 0
        self.attempts: Counter[str] = Counter()  # body digest -> requests seen
        self.status_counts: Counter[int] = Counter()  # HTTP status -> responses sent
        self.faults_injected: Counter[str] = Counter()
        self.chat_requests: list[dict[str, Any]] = []
        self.schema_errors: list[str] = []
        self.answered: Counter[str] = Counter()  # body digest -> 200 answers to a live client
        self.headers_seen: list[dict[str, str]] = []
        self.files: dict[str, dict[str, Any]] = {}  # id -> file object (+ "_content": bytes)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def routes(self, app: web.Application) -> None:
        """Add the server's routes; subclasses add more (files, batches, fine-tuning)."""
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/files", self._upload_file)
        app.router.add_get("/v1/files/{file_id}", self._get_file)
        app.router.add_get("/v1/files/{file_id}/content", self._file_content)
        app.router.add_get("/_fake/stats", self._stats)

    async def _start(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

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
            return self._send(_error(400, "body is not JSON"))
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
                    _error(400, f"request does not match CreateChatCompletionRequest: {problems[0]}")
                )
        reply = self.responder(body)
        if isinstance(reply, str):
            reply = Reply(text=reply)
        limit_headers: dict[str, str] = {}
        if self.limits is not None:
            admitted, limit_headers = self.limits.admit(self.token_cost(body, reply))
            if not admitted:
                return self._send(_error(429, "Rate limit reached (fake server)", limit_headers))
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
            return self._send(_error(reply.status, reply.error_message, headers))
        if request.transport is None or request.transport.is_closing():
            return self._send(web.Response(status=499))  # the client is gone: nothing was delivered
        if reply.raw is not None:
            return self._send(web.Response(body=reply.raw, content_type="application/json"))
        with self._lock:
            self.answered[digest] += 1
        return self._send(web.json_response(self.completion(body, reply), headers=headers))

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
            return _error(500, "injected server error", headers)
        if fault == "rate_limit":
            wait = self.faults.retry_after
            retry = {
                "retry-after-ms": str(max(1, round(wait * 1000))),
                "retry-after": str(max(1, round(wait))),
            }
            return _error(429, "injected rate limit", {**headers, **retry})
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

    # -- files API --------------------------------------------------------------------------------

    def add_file(self, content: bytes, filename: str, purpose: str) -> dict[str, Any]:
        """Store a file as the Files API would and return its file object."""
        file_id = f"file-{hashlib.sha256(content + filename.encode()).hexdigest()[:24]}"
        file_id = file_id if file_id not in self.files else f"{file_id}-{len(self.files)}"
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }
        self.files[file_id] = {**obj, "_content": content}
        return obj

    def file_content(self, file_id: str) -> bytes:
        return bytes(self.files[file_id]["_content"])

    async def _upload_file(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField) or not isinstance(purpose, str):
            return _error(400, "multipart form needs 'file' and 'purpose'")
        return web.json_response(self.add_file(upload.file.read(), upload.filename, purpose))

    async def _get_file(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return _error(404, "no such file")
        return web.json_response({k: v for k, v in found.items() if not k.startswith("_")})

    async def _file_content(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        if found is None:
            return _error(404, "no such file")
        return web.Response(body=found["_content"], content_type="application/octet-stream")

    def _delay(self) -> float:
        if self.latency <= 0:
            return 0.0
        return max(0.0, self.latency + self._rng.uniform(-self.jitter, self.jitter))

    @staticmethod
    def completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
        completion_tokens = max(1, len(reply.text) // 4)
        return {
            "id": f"chatcmpl-{body_digest(body)[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text, "refusal": None},
                    "finish_reason": reply.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": max(1, prompt_chars // 4),
                "completion_tokens": completion_tokens,
                "total_tokens": max(1, prompt_chars // 4) + completion_tokens,
            },
        }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": "fake_error", "code": str(status)}}
    return web.json_response(payload, status=status, headers=headers or {})
