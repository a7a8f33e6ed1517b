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
from pathlib import Path
from typing import Any

from aiohttp import web
from synthtune.core.fake_limits import Faults, ServerLimits
from synthtune.core.openai_schemas import (  # noqa: F401  (re-exported for tests and plugins)
    LINE_SCHEMAS,
    REQUEST_SCHEMAS,
    SCHEMA_PACKAGE,
    load_schemas,
    validator_for,
)


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
        self._batch_validator = validator_for(document, "CreateBatchRequest")
        self._init_fine_tuning(document)
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
        # Batch API state and the knobs a test turns to control how batches progress.
        self.batches: dict[str, dict[str, Any]] = {}  # id -> batch object (+ "_lines", "_polls")
        self.batch_create_bodies: list[dict[str, Any]] = []
        self.batch_answered: Counter[str] = Counter()  # custom_id -> answers written to outputs
        self.batch_polls_to_finish = 0  # GETs of a running batch before it finishes by itself
        self.batch_hold = False  # True: running batches wait for finish_batch()
        self.batch_final_status = "completed"  # how a batch finishes by itself (or "expired")
        self.batch_answer_limit: int | None = None  # lines answered when expiring or cancelling

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
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches", self._list_batches)
        app.router.add_get("/v1/batches/{batch_id}", self._get_batch)
        app.router.add_post("/v1/batches/{batch_id}/cancel", self._cancel_batch)
        self._fine_tuning_routes(app)
        app.router.add_get("/_fake/stats", self._stats)

    async def _start(self) -> None:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        self.routes(app)
        # Held or slow handlers must not keep a test waiting at shutdown.
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
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

    # -- batches API ------------------------------------------------------------------------------

    @property
    def batch_count(self) -> int:
        return len(self.batches)

    def batch_lines(self, batch_id: str) -> list[dict[str, Any]]:
        """The parsed input lines of a batch."""
        return list(self.batches[batch_id]["_lines"])

    def _schema_error(self, what: str, problem: str, body: Any) -> web.Response:
        self.schema_errors.append(f"{problem} in {json.dumps(body)[:200]}")
        return _error(400, f"request does not match {what}: {problem}")

    async def _create_batch(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "body is not JSON")
        with self._lock:
            self.batch_create_bodies.append(body)
        problems = [e.message for e in self._batch_validator.iter_errors(body)]
        if problems:
            return self._schema_error("CreateBatchRequest", problems[0], body)
        found = self.files.get(body["input_file_id"])
        if found is None:
            return _error(400, f"no such file: {body['input_file_id']}")
        if found["purpose"] != "batch":
            return _error(400, f"file {found['id']} has purpose {found['purpose']!r}, not 'batch'")
        lines: list[dict[str, Any]] = []
        seen: set[str] = set()
        for number, raw in enumerate(found["_content"].decode("utf-8").splitlines(), 1):
            if not raw.strip():
                continue
            line = json.loads(raw)
            if set(line) != {"custom_id", "method", "url", "body"}:
                return self._schema_error("the batch input line format", f"line {number} keys", line)
            if line["method"] != "POST" or line["url"] != body["endpoint"]:
                return self._schema_error("the batch endpoint", f"line {number} method/url", line)
            if line["custom_id"] in seen:
                return _error(400, f"line {number}: duplicate custom_id {line['custom_id']}")
            seen.add(line["custom_id"])
            problems = [e.message for e in self._chat_validator.iter_errors(line["body"])]
            if problems:
                return self._schema_error("CreateChatCompletionRequest", problems[0], line["body"])
            lines.append(line)
        if not lines:
            return _error(400, f"file {found['id']} has no requests")
        now = int(time.time())
        suffix = hashlib.sha256(body["input_file_id"].encode()).hexdigest()[:8]
        batch_id = f"batch_{len(self.batches) + 1:04d}{suffix}"
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "completion_window": body["completion_window"],
            "created_at": now,
            "in_progress_at": now,
            "expires_at": now + 24 * 3600,
            "input_file_id": body["input_file_id"],
            "status": "in_progress",
            "metadata": body.get("metadata"),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "_lines": lines,
            "_polls": 0,
        }
        with self._lock:
            self.batches[batch_id] = batch
        return web.json_response(_public(batch))

    async def _get_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "no such batch")
        batch["_gets"] = batch.get("_gets", 0) + 1
        if batch["status"] == "in_progress" and not self.batch_hold:
            batch["_polls"] += 1
            total = batch["request_counts"]["total"]
            batch["request_counts"]["completed"] = min(
                total, total * batch["_polls"] // (self.batch_polls_to_finish + 1)
            )
            if batch["_polls"] > self.batch_polls_to_finish:
                self.finish_batch(batch["id"], self.batch_final_status, self.batch_answer_limit)
        elif batch["status"] == "cancelling":
            self.finish_batch(batch["id"], "cancelled", self.batch_answer_limit or 0)
        return web.json_response(_public(batch))

    async def _cancel_batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["batch_id"])
        if batch is None:
            return _error(404, "no such batch")
        if batch["status"] in ("validating", "in_progress"):
            batch["status"] = "cancelling"
            batch["cancelling_at"] = int(time.time())
        return web.json_response(_public(batch))

    async def _list_batches(self, request: web.Request) -> web.Response:
        limit = int(request.query.get("limit", "20"))
        after = request.query.get("after")
        newest_first = sorted(self.batches.values(), key=lambda b: b["id"], reverse=True)
        if after is not None:
            ids = [b["id"] for b in newest_first]
            newest_first = newest_first[ids.index(after) + 1 :] if after in ids else []
        page = newest_first[:limit]
        return web.json_response(
            {
                "object": "list",
                "data": [_public(b) for b in page],
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
                "has_more": len(newest_first) > limit,
            }
        )

    def finish_batch(self, batch_id: str, status: str = "completed", answered: int | None = None) -> None:
        """End a running batch: answer its lines with the responder (only the first ``answered``
        ones unless ``status`` is "completed"), write the output and error files."""
        batch = self.batches[batch_id]
        if batch["status"] not in ("validating", "in_progress", "cancelling"):
            return
        lines = batch["_lines"]
        limit = len(lines) if status == "completed" or answered is None else answered
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for n, line in enumerate(lines):
            custom_id, body = line["custom_id"], line["body"]
            request_id = f"req_{body_digest(body)[:16]}"
            if n >= limit:
                code = "batch_expired" if status == "expired" else "batch_cancelled"
                errors.append(
                    {
                        "id": f"batch_req_{n}",
                        "custom_id": custom_id,
                        "response": None,
                        "error": {"code": code, "message": f"request not executed: batch {status}"},
                    }
                )
                continue
            reply = self.responder(body)
            if isinstance(reply, str):
                reply = Reply(text=reply)
            if reply.status == 200 and reply.raw is None:
                with self._lock:
                    self.batch_answered[custom_id] += 1
                answer = self.completion(body, reply)
                response = {"status_code": 200, "request_id": request_id, "body": answer}
                outputs.append(_batch_row(n, custom_id, response))
            else:
                status_code = reply.status if reply.status != 200 else 500
                payload = {"error": {"message": reply.error_message, "type": "fake_error", "code": None}}
                response = {"status_code": status_code, "request_id": request_id, "body": payload}
                errors.append(_batch_row(n, custom_id, response))
        now = int(time.time())
        for kind, rows in (("output", outputs), ("error", errors)):
            if rows:
                content = "".join(json.dumps(row) + "\n" for row in rows).encode()
                stored = self.add_file(content, f"{batch_id}_{kind}.jsonl", "batch_output")
                batch[f"{kind}_file_id"] = stored["id"]
        batch["status"] = status
        batch[f"{status}_at"] = now
        batch["request_counts"] = {"total": len(lines), "completed": len(outputs), "failed": len(errors)}

    # -- fine-tuning jobs API ----------------------------------------------------------------------
    # Each GET of a job moves it one step along ``ft_script`` (validating_files -> queued ->
    # running ... -> succeeded), adding the events OpenAI would. ``ft_hold`` keeps running jobs
    # running (to kill a client that waits); ``ft_refusal`` makes job creation fail.

    FT_SCRIPT = ("validating_files", "queued", "running", "running", "running", "succeeded")

    def _init_fine_tuning(self, document: dict[str, Any]) -> None:
        self._ft_validator = validator_for(document, "CreateFineTuningJobRequest")
        self.ft_script: tuple[str, ...] = self.FT_SCRIPT
        self.ft_jobs: dict[str, dict[str, Any]] = {}
        self.ft_job_requests: list[dict[str, Any]] = []
        self.ft_events: dict[str, list[dict[str, Any]]] = {}
        self.ft_retrieves: Counter[str] = Counter()
        self.ft_refusal: tuple[int, str] | None = None
        self.ft_hold = False
        self.ft_org = "synthtune-fake"

    def _fine_tuning_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/fine_tuning/jobs", self._ft_create)
        app.router.add_get("/v1/fine_tuning/jobs", self._ft_list)
        app.router.add_get("/v1/fine_tuning/jobs/{job_id}", self._ft_retrieve)
        app.router.add_get("/v1/fine_tuning/jobs/{job_id}/events", self._ft_list_events)
        app.router.add_post("/v1/fine_tuning/jobs/{job_id}/cancel", self._ft_cancel)

    def _ft_event(self, job_id: str, message: str, data: dict[str, Any] | None = None) -> None:
        events = self.ft_events.setdefault(job_id, [])
        events.append(
            {
                "id": f"ftevent-{job_id[6:]}-{len(events):04d}",
                "object": "fine_tuning.job.event",
                "created_at": int(time.time()),
                "level": "info",
                "message": message,
                "type": "metrics" if data else "message",
                "data": data or {},
            }
        )

    def _ft_public(self, job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if not k.startswith("_")}

    async def _ft_create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "body is not JSON")
        with self._lock:
            self.ft_job_requests.append(body)
        problems = [e.message for e in self._ft_validator.iter_errors(body)]
        if problems:
            self.schema_errors.append(f"{problems[0]} in {json.dumps(body)[:200]}")
            return _error(400, f"request does not match CreateFineTuningJobRequest: {problems[0]}")
        if self.ft_refusal is not None:
            return _error(*self.ft_refusal)
        for field_name in ("training_file", "validation_file"):
            file_id = body.get(field_name)
            if file_id is not None and file_id not in self.files:
                return _error(400, f"invalid {field_name}: {file_id}")
        content = self.file_content(body["training_file"])
        method = body.get("method") or {"type": "supervised"}
        hyper = ((method.get(method["type"]) or {}).get("hyperparameters")) or {}
        epochs = hyper.get("n_epochs", "auto")
        epochs = 3 if epochs == "auto" else int(epochs)
        with self._lock:
            job_id = f"ftjob-{len(self.ft_jobs) + 1:04d}{body_digest(body)[:8]}"
            self.ft_jobs[job_id] = {
                "id": job_id,
                "object": "fine_tuning.job",
                "created_at": int(time.time()),
                "error": None,
                "fine_tuned_model": None,
                "finished_at": None,
                "hyperparameters": {
                    "n_epochs": epochs,
                    "batch_size": hyper.get("batch_size", 1) if hyper.get("batch_size") != "auto" else 1,
                    "learning_rate_multiplier": 2.0,
                },
                "model": body["model"],
                "organization_id": f"org-{self.ft_org}",
                "result_files": [],
                "seed": body.get("seed", 1234),
                "status": self.ft_script[0],
                "trained_tokens": None,
                "training_file": body["training_file"],
                "validation_file": body.get("validation_file"),
                "metadata": body.get("metadata"),
                "method": method,
                "_step": 0,
                "_suffix": body.get("suffix") or "",
                "_tokens": max(1, len(content) // 4) * epochs,
            }
            self._ft_event(job_id, f"Validating training file: {body['training_file']}")
            job = self.ft_jobs[job_id]
        return web.json_response(self._ft_public(job))

    def _ft_advance(self, job: dict[str, Any]) -> None:
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return
        if self.ft_hold and job["status"] == "running":
            return
        job["_step"] = min(job["_step"] + 1, len(self.ft_script) - 1)
        status = self.ft_script[job["_step"]]
        job_id = job["id"]
        if status == "queued" and job["status"] != "queued":
            self._ft_event(job_id, "Files validated, moving job to queued state")
        elif status == "running":
            if job["status"] != "running":
                self._ft_event(job_id, "Fine-tuning job started")
            steps = len(self.ft_script)
            step = job["_step"]
            loss = round(2.0 / step, 4)
            data = {"step": step, "total_steps": steps, "train_loss": loss}
            self._ft_event(job_id, f"Step {step}/{steps}: training loss={loss}", data)
        elif status == "succeeded":
            job["fine_tuned_model"] = f"ft:{job['model']}:{self.ft_org}:{job['_suffix']}:{job_id[6:14]}"
            job["trained_tokens"] = job["_tokens"]
            job["finished_at"] = int(time.time())
            job["result_files"] = [f"file-result-{job_id[6:]}"]
            self._ft_event(job_id, f"New fine-tuned model created: {job['fine_tuned_model']}")
            self._ft_event(job_id, "The job has successfully completed")
        elif status == "failed":
            job["error"] = {"code": "scripted_failure", "message": "scripted failure", "param": None}
            self._ft_event(job_id, "The job failed: scripted failure")
        job["status"] = status

    async def _ft_retrieve(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        with self._lock:
            job = self.ft_jobs.get(job_id)
            if job is None:
                return _error(404, f"no fine-tuning job {job_id}")
            self.ft_retrieves[job_id] += 1
            self._ft_advance(job)
            return web.json_response(self._ft_public(job))

    @staticmethod
    def _page(items: list[dict[str, Any]], request: web.Request, object_name: str = "list") -> dict[str, Any]:
        """Cursor pagination as OpenAI does it: newest first, ``after`` = last id seen."""
        limit = int(request.query.get("limit", "20"))
        after = request.query.get("after")
        if after is not None:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        return {"object": object_name, "data": items[:limit], "has_more": len(items) > limit}

    async def _ft_list(self, request: web.Request) -> web.Response:
        with self._lock:
            jobs = [self._ft_public(j) for j in reversed(self.ft_jobs.values())]
        return web.json_response(self._page(jobs, request))

    async def _ft_list_events(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        with self._lock:
            if job_id not in self.ft_jobs:
                return _error(404, f"no fine-tuning job {job_id}")
            events = list(reversed(self.ft_events.get(job_id, [])))
        return web.json_response(self._page(events, request))

    async def _ft_cancel(self, request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        with self._lock:
            job = self.ft_jobs.get(job_id)
            if job is None:
                return _error(404, f"no fine-tuning job {job_id}")
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return _error(400, f"job {job_id} has already {job['status']}")
            job["status"] = "cancelled"
            job["finished_at"] = int(time.time())
            self._ft_event(job_id, "Fine-tuning job cancelled")
            return web.json_response(self._ft_public(job))

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


def _batch_row(n: int, custom_id: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"id": f"batch_req_{n}", "custom_id": custom_id, "response": response, "error": None}


def _public(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if not k.startswith("_")}


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    payload = {"error": {"message": message, "type": "fake_error", "code": str(status)}}
    return web.json_response(payload, status=status, headers=headers or {})
