"""Generation through the OpenAI Batch API (half price, answers within 24 hours).

Requests become lines of a batch JSONL file, ``custom_id`` = the request's cache key and ``body``
= the same chat-completions body online mode sends. Lines are packed into chunks of at most
``batch_max_requests`` lines and ``batch_max_bytes`` bytes; each chunk is uploaded
(``purpose="batch"``) and submitted as one batch, then every batch is polled until it ends and its
output and error files are mapped back to outcomes by ``custom_id``.

Nothing paid for is submitted twice. Each chunk's record (its custom_ids, input file and batch id)
is committed to the run store before and right after the batch is created, and the chunk is
listed in an index of open chunks, so a rerun (or a run killed while waiting) polls the batches
already running instead of resubmitting. A run killed between ``batches.create`` and the commit
that follows it is covered too: the batch carries the chunk's hash in its metadata and the rerun
finds it with ``batches.list``. A chunk is closed once its answers were handed to the core (which
commits each one on arrival); requests a batch left unanswered (expired, cancelled, failed,
errors) come back as failures, and a rerun puts them in a new batch.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, Final

import openai
from synthtune.core.errors import ConfigError, GenerationError
from synthtune.core.models import GenerationOutcome, GenerationRequest, RunContext, Usage
from synthtune.core.spend import usage_cost
from synthtune.plugins.openai.batch_book import ChunkBook, ChunkRecord, chunk_hash
from synthtune.plugins.openai.client import make_async_client
from synthtune.plugins.openai.generate import OpenAIGenerateSettings, request_body

ENDPOINT: Final = "/v1/chat/completions"
COMPLETION_WINDOW: Final = "24h"
TERMINAL = frozenset({"completed", "expired", "cancelled", "failed"})
METADATA_KEY = "synthtune_chunk"
LIST_PAGE = 100
GONE = object()  # a batch the server no longer knows


def batch_line(request: GenerationRequest, settings: OpenAIGenerateSettings) -> bytes:
    """One line of a batch input file for ``request``."""
    line = {
        "custom_id": request.key,
        "method": "POST",
        "url": ENDPOINT,
        "body": request_body(request, settings),
    }
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class ChunkBuilder:
    """Packs lines into chunks within the request-count and byte limits."""

    def __init__(self, max_requests: int, max_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.ids: list[str] = []
        self.models: dict[str, str] = {}
        self.lines: list[bytes] = []
        self.size = 0

    def fits(self, line: bytes) -> bool:
        return len(self.ids) < self.max_requests and self.size + len(line) <= self.max_bytes

    def add(self, key: str, model: str, line: bytes) -> None:
        self.ids.append(key)
        self.models[key] = model
        self.lines.append(line)
        self.size += len(line)

    def take(self) -> tuple[list[str], dict[str, str], bytes]:
        taken = (self.ids, self.models, b"".join(self.lines))
        self.ids, self.models, self.lines, self.size = [], {}, [], 0
        return taken


class BatchProgress:
    """One status line on stderr: rewritten in place on a terminal, printed on change otherwise."""

    def __init__(self, log_enabled: bool = True) -> None:
        self.tty = sys.stderr.isatty()
        self.enabled = log_enabled
        self.last = ""
        self.states: dict[str, tuple[str, int, int, int]] = {}

    def update(self, batch: Any) -> None:
        counts = batch.request_counts
        total = counts.total if counts else 0
        done = counts.completed if counts else 0
        failed = counts.failed if counts else 0
        self.states[batch.id] = (batch.status, total, done, failed)
        self.show()

    def show(self) -> None:
        if not self.enabled:
            return
        total = sum(s[1] for s in self.states.values())
        done = sum(s[2] for s in self.states.values())
        failed = sum(s[3] for s in self.states.values())
        ended = sum(1 for s in self.states.values() if s[0] in TERMINAL)
        statuses = ", ".join(sorted({s[0] for s in self.states.values()}))
        line = (
            f"batches {ended}/{len(self.states)} ended ({statuses}): "
            f"{done}/{total} requests answered, {failed} failed"
        )
        if line == self.last:
            return
        self.last = line
        if self.tty:
            sys.stderr.write("\r" + line.ljust(100))
            if ended == len(self.states):
                sys.stderr.write("\n")
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


def outcome_from_line(row: dict[str, Any], model: str | None) -> GenerationOutcome | None:
    """The outcome one line of a batch output or error file stands for (None if it names no
    request)."""
    key = row.get("custom_id")
    if not isinstance(key, str):
        return None
    error = row.get("error")
    if error:
        code = error.get("code") if isinstance(error, dict) else None
        message = error.get("message") if isinstance(error, dict) else str(error)
        return GenerationOutcome(key=key, error=f"batch: {code or 'error'}: {message}")
    response = row.get("response") or {}
    status = response.get("status_code")
    body = response.get("body")
    if status != 200 or not isinstance(body, dict):
        inner = body.get("error") if isinstance(body, dict) else None
        message = inner.get("message") if isinstance(inner, dict) else json.dumps(body)[:200]
        return GenerationOutcome(key=key, error=f"HTTP {status}: {message}")
    choices = body.get("choices") or []
    if not choices:
        return GenerationOutcome(key=key, error="response had no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    if content is None:
        refusal = message.get("refusal")
        why = f"refusal: {refusal}" if refusal else "empty"
        return GenerationOutcome(key=key, error=f"no content ({why})")
    usage_body = body.get("usage") or {}
    usage = Usage(
        prompt_tokens=int(usage_body.get("prompt_tokens") or 0),
        completion_tokens=int(usage_body.get("completion_tokens") or 0),
    )
    return GenerationOutcome(
        key=key,
        text=content,
        finish_reason=choice.get("finish_reason"),
        model=body.get("model"),
        usage=usage,
        cost=usage_cost(model or body.get("model"), usage, batch=True),
        response_id=body.get("id"),
    )


class BatchRunner:
    """Submits chunks, polls their batches and turns their files into outcomes."""

    def __init__(
        self, client: openai.AsyncOpenAI, settings: OpenAIGenerateSettings, context: RunContext
    ) -> None:
        self.client = client
        self.settings = settings
        self.context = context
        self.book = ChunkBook(context)
        self.owner: dict[str, str] = {}  # custom_id -> chunk, for chunks already submitted
        self.records: dict[str, ChunkRecord] = {}
        self.wanted: dict[str, set[str]] = {}  # chunk -> custom_ids this run needs
        self.progress = BatchProgress()
        self.created = 0
        self.resumed = 0

    # -- recovering earlier runs' batches ---------------------------------------------------------

    async def recover(self) -> None:
        """Load the open chunks; adopt batches created but not yet recorded (found by metadata)."""
        open_records = [r for c in self.book.open_chunks() if (r := self.book.get(c)) is not None]
        unrecorded = {r.chunk: r for r in open_records if r.state == "submitting"}
        if unrecorded:
            since = min(r.created_at for r in unrecorded.values())
            found = await self._find_by_metadata(set(unrecorded), since)
            for chunk, record in unrecorded.items():
                if chunk in found:
                    record = record.model_copy(update={"state": "submitted", "batch_id": found[chunk]})
                    self.book.put(record)
                    self.context.log.info("adopted batch %s found by its metadata", found[chunk])
                else:  # batches.create never reached the server: the requests go in a new chunk
                    self.book.close(record)
        for record in open_records:
            current = self.book.get(record.chunk)
            if current is None or current.state != "submitted":
                continue
            self.records[current.chunk] = current
            for key in current.custom_ids:
                self.owner[key] = current.chunk

    async def _find_by_metadata(self, chunks: set[str], since: float) -> dict[str, str]:
        """chunk hash -> batch id, for recent batches whose metadata names one of ``chunks``."""
        found: dict[str, str] = {}
        async for batch in self.client.batches.list(limit=LIST_PAGE):
            if batch.created_at < since - 3600:  # listed newest first: nothing older can match
                break
            chunk = (batch.metadata or {}).get(METADATA_KEY)
            if chunk in chunks and chunk not in found:
                found[chunk] = batch.id
            if len(found) == len(chunks):
                break
        return found

    # -- submitting ---------------------------------------------------------------------------------

    def claim(self, request: GenerationRequest) -> bool:
        """Attach ``request`` to an already submitted chunk that holds it; False if none does."""
        assert request.key is not None
        chunk = self.owner.get(request.key)
        if chunk is None:
            return False
        self.wanted.setdefault(chunk, set()).add(request.key)
        return True

    async def submit(self, ids: list[str], models: dict[str, str], data: bytes) -> None:
        """Upload one chunk and create its batch, committing the chunk before and after."""
        chunk = chunk_hash(ids)
        earlier = self.book.get(chunk)
        if earlier is not None and earlier.state == "submitted" and earlier.batch_id:
            self.book.put(earlier)  # same requests, batch already running: reuse it
            self._track(earlier, ids)
            return
        uploaded = await self.client.files.create(
            file=(f"synthtune-{chunk[:12]}.jsonl", data, "application/jsonl"), purpose="batch"
        )
        record = ChunkRecord(
            chunk=chunk, state="submitting", custom_ids=ids, models=models, input_file_id=uploaded.id
        )
        self.book.put(record)
        batch = await self.client.batches.create(
            input_file_id=uploaded.id,
            endpoint=ENDPOINT,
            completion_window=COMPLETION_WINDOW,
            metadata={
                METADATA_KEY: chunk,
                "synthtune_run": self.context.run_id,
                "synthtune_requests": str(len(ids)),
            },
        )
        record = record.model_copy(update={"state": "submitted", "batch_id": batch.id})
        self.book.put(record)
        self.created += 1
        self.context.log.info("submitted batch %s with %d requests", batch.id, len(ids))
        self._track(record, ids)

    def _track(self, record: ChunkRecord, ids: list[str]) -> None:
        self.records[record.chunk] = record
        self.wanted.setdefault(record.chunk, set()).update(ids)
        for key in record.custom_ids:
            self.owner[key] = record.chunk

    # -- waiting and collecting ---------------------------------------------------------------------

    async def wait(self) -> AsyncIterator[GenerationOutcome]:
        """Poll every batch this run needs until it ends; yield its outcomes as it does."""
        active = {chunk: self.records[chunk] for chunk in self.wanted if self.wanted[chunk]}
        self.resumed = len(active) - self.created
        if self.resumed > 0:
            sys.stderr.write(f"resuming {self.resumed} batch(es) submitted by an earlier run\n")
        max_wait = self.settings.batch_max_wait
        deadline = None if max_wait is None else time.monotonic() + max_wait
        while active:
            for chunk, record in list(active.items()):
                assert record.batch_id is not None
                batch = await self._retrieve(record.batch_id)
                if batch is None:
                    continue
                if batch is GONE:  # deleted, or another server: its requests go in a new batch
                    for key in record.custom_ids:
                        if key in self.wanted[chunk]:
                            error = f"batch {record.batch_id} not found on the server; a rerun resubmits"
                            yield GenerationOutcome(key=key, error=error)
                    self.book.close(record)
                    del active[chunk]
                    continue
                self.progress.update(batch)
                if batch.status in TERMINAL:
                    async for outcome in self._collect(batch, record, self.wanted[chunk]):
                        yield outcome
                    self.book.close(record)
                    del active[chunk]
            if not active:
                break
            if deadline is not None and time.monotonic() >= deadline:
                running = ", ".join(r.batch_id or "?" for r in active.values())
                self.context.log.warning(
                    "stopped waiting after %ss; batch(es) %s keep running: rerun to collect them",
                    self.settings.batch_max_wait,
                    running,
                )
                sys.stderr.write(
                    f"batch(es) still running: {running}; rerun the same command to collect them\n"
                )
                return
            await asyncio.sleep(self.settings.batch_poll_interval)

    async def _retrieve(self, batch_id: str) -> Any:
        try:
            return await self.client.batches.retrieve(batch_id)
        except (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError) as error:
            self.context.log.warning("polling batch %s failed (%s); retrying", batch_id, error)
            return None
        except openai.NotFoundError:
            return GONE
        except openai.APIStatusError as error:
            raise GenerationError(f"batch {batch_id}: HTTP {error.status_code}: {error.message}") from None

    async def _collect(
        self, batch: Any, record: ChunkRecord, wanted: set[str]
    ) -> AsyncIterator[GenerationOutcome]:
        answered: set[str] = set()
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await self.client.files.content(file_id)
            for raw in content.text.splitlines():
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                key = row.get("custom_id") if isinstance(row, dict) else None
                if key not in wanted or key in answered:
                    continue
                outcome = outcome_from_line(row, record.models.get(key))
                if outcome is not None:
                    answered.add(key)
                    yield outcome
        reason = _batch_errors(batch)
        for key in record.custom_ids:
            if key in wanted and key not in answered:
                error = f"batch {batch.id} {batch.status} without an answer{reason}"
                yield GenerationOutcome(key=key, error=error)


def _batch_errors(batch: Any) -> str:
    errors = getattr(getattr(batch, "errors", None), "data", None) or []
    messages = [e.message for e in errors if getattr(e, "message", None)]
    return f": {'; '.join(messages[:3])}" if messages else ""


async def generate_batch(
    requests: AsyncIterator[GenerationRequest],
    settings: OpenAIGenerateSettings,
    context: RunContext,
) -> AsyncIterator[GenerationOutcome]:
    """Answer every request through the Batch API; yield outcomes as each batch ends."""
    try:
        client = make_async_client(
            base_url=settings.base_url,
            api_key_env=settings.api_key_env,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
            max_connections=4,
            transport=settings.transport,
        )
    except openai.OpenAIError as error:
        raise ConfigError(f"openai client: {error}") from None
    async with client:
        runner = BatchRunner(client, settings, context)
        try:
            await runner.recover()
            builder = ChunkBuilder(settings.batch_max_requests, settings.batch_max_bytes)
            async for request in requests:
                assert request.key is not None and request.model is not None
                if runner.claim(request):
                    continue
                line = batch_line(request, settings)
                if len(line) > settings.batch_max_bytes:
                    yield GenerationOutcome(
                        key=request.key,
                        error=f"request is {len(line)} bytes, over batch_max_bytes "
                        f"({settings.batch_max_bytes})",
                        attempts=0,
                    )
                    continue
                if not builder.fits(line):
                    await runner.submit(*builder.take())
                builder.add(request.key, request.model, line)
            if builder.ids:
                await runner.submit(*builder.take())
            async for outcome in runner.wait():
                yield outcome
        except openai.APIStatusError as error:
            raise GenerationError(
                f"batch mode: the server refused a request ({error.status_code}): {error.message}"
            ) from None
        except openai.APIConnectionError as error:
            raise GenerationError(f"batch mode: {type(error).__name__}: {error}") from None
