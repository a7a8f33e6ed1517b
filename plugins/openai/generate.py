"""Chat-completion generation against any OpenAI-compatible server.

Workers pull requests from the core's stream and answer each one under four controls:

- a circuit breaker (:mod:`.breaker`) that pauses everything while 429s persist;
- adaptive concurrency (:mod:`.concurrency`): at most ``concurrency`` requests in flight, halved
  on a burst of 429s and grown back one slot per round trip;
- request- and token-per-minute budgets (:mod:`.ratelimit`), from the settings or learned from the
  server's ``x-ratelimit-*`` headers; token estimates (tiktoken prompt count plus the expected
  completion) are corrected by each response's usage;
- retries (:mod:`.retry`): our own loop, so that every attempt goes through the controls above,
  is counted in the run's statistics, and malformed bodies are retried too. Retry-After is
  honoured; otherwise exponential backoff with full jitter. Answers that will not change (a 4xx
  other than 408/409/429, a 5xx saying the request is invalid) are not retried, and the run's
  retry budget bounds retries of everything else.

Run-level stops, each one line (:class:`GenerationError`): 401/403/404 and ``insufficient_quota``
at once; a server that cannot be reached (:mod:`.reachability`); a 429 storm past its caps
(:mod:`.ratewatch`). A request that still fails after ``max_retries`` retries is yielded with
``error`` set (the core records it; a rerun retries it). Structured-output requests go through
:mod:`.structured`, which picks the ``response_format`` shape the server takes and validates
every reply against the schema.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from pydantic import Field
from synthtune.core import trust
from synthtune.core.errors import ConfigError, GenerationError
from synthtune.core.models import GenerationOutcome, GenerationRequest, RunContext, Usage
from synthtune.core.settings import GenerateSettings
from synthtune.core.tokens import count_messages
from synthtune.plugins.openai.breaker import CircuitBreaker
from synthtune.plugins.openai.client import KEY_VARIABLES, KNOWN_HOSTS, resolve_base_url
from synthtune.plugins.openai.clock import Clock
from synthtune.plugins.openai.concurrency import AdaptiveConcurrency
from synthtune.plugins.openai.ratelimit import LimitHeaders, RateLimiter, retry_after
from synthtune.plugins.openai.ratewatch import RateLimitWatch
from synthtune.plugins.openai.reachability import Reachability
from synthtune.plugins.openai.retry import Backoff, RetryBudget, classify_status
from synthtune.plugins.openai.servers import KINDS, Mode, ServerSetting
from synthtune.plugins.openai.structured import (
    FormatRefused,
    ModeBook,
    refuses_format,
    structured_responder,
)
from synthtune.plugins.openai.transport import (
    DEFAULT_BASE_URL,
    Reply,
    Transport,
    TransportError,
    make_transport,
)

_DONE = object()


class OpenAIGenerateSettings(GenerateSettings):
    """``[generate]`` settings of the ``openai`` plugin."""

    model: str = "gpt-4.1-mini"
    base_url: str | None = trust.endpoint(
        "OpenAI-compatible endpoint; default $OPENAI_BASE_URL or OpenAI", KNOWN_HOSTS
    )
    api_key_env: str = trust.secret_env("OPENAI_API_KEY", KEY_VARIABLES)
    concurrency: int = Field(default=16, ge=1, le=2048, description="most requests in flight")
    max_retries: int = Field(default=8, ge=0, le=50, description="retries per request after the first try")
    timeout: float = Field(
        default=120.0, gt=0, description="seconds per request attempt (local servers: 600 unless set)"
    )
    token_limit_field: Literal["max_completion_tokens", "max_tokens"] = Field(
        default="max_completion_tokens",
        description="how max_tokens is sent (servers other than OpenAI: 'max_tokens' unless set)",
    )
    server: ServerSetting = Field(
        default="auto",
        description="server kind: llamacpp, vllm, ollama, openai, other; 'auto' asks the server",
    )
    slots: int | None = Field(
        default=None,
        ge=1,
        description="requests the server runs at once (caps concurrency); default: from the server kind",
    )
    transport: Literal["direct", "aiohttp", "httpx"] = Field(
        default="direct",
        description="'direct': lean aiohttp requests (fastest); 'aiohttp'/'httpx': the openai client",
    )
    rpm: float | None = Field(default=None, gt=0, description="requests per minute; default: learned")
    tpm: float | None = Field(default=None, gt=0, description="tokens per minute; default: learned")
    rate_limit_headroom: float = Field(
        default=0.98, gt=0, le=1, description="fraction of a learned limit to use"
    )
    adaptive_concurrency: bool = Field(default=True, description="shrink on 429 bursts, grow back")
    min_concurrency: int = Field(default=1, ge=1)
    backoff_base: float = Field(default=0.5, gt=0, description="seconds; doubles each retry")
    backoff_cap: float = Field(default=30.0, gt=0, description="longest backoff wait, seconds")
    max_retry_after: float = Field(
        default=600.0, gt=0, description="a longer Retry-After fails the request instead of waiting"
    )
    breaker_threshold: int = Field(default=16, ge=1, description="consecutive 429s that pause all")
    retry_budget: int | None = Field(
        default=None,
        ge=0,
        description="retries the run may spend before its first answers (default: max(10, 2 x concurrency))",
    )
    retry_budget_ratio: float = Field(
        default=0.5, ge=0, description="retries earned by each successful answer"
    )
    unreachable_after: float = Field(
        default=3.0,
        gt=0,
        description="seconds of connection failures, before the server first answers, that stop the run",
    )
    rate_limit_max_stall: float = Field(
        default=90.0, gt=0, description="stop after this many seconds of 429s without an answer"
    )
    rate_limit_max_wait: float = Field(
        default=600.0, gt=0, description="stop after this many seconds held up by 429s in all"
    )
    rate_limit_notice_every: float = Field(
        default=5.0, gt=0, description="seconds between 'rate limited: waiting' lines"
    )
    completion_tokens_estimate: int = Field(
        default=512, ge=1, description="expected completion tokens before any usage is seen"
    )
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
        "messages": request.message_dicts(),
        **params,
    }
    if max_tokens is not None:
        body[settings.token_limit_field] = max_tokens
    return body


class ChatEngine:
    """Answers chat requests through one transport under rate, concurrency and retry control."""

    def __init__(
        self,
        settings: OpenAIGenerateSettings,
        context: RunContext,
        transport: Transport,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.context = context
        self.transport = transport
        self.clock = clock or Clock()
        self.limiter = RateLimiter(
            settings.rpm, settings.tpm, headroom=settings.rate_limit_headroom, clock=self.clock
        )
        minimum = settings.min_concurrency if settings.adaptive_concurrency else settings.concurrency
        self.slots = AdaptiveConcurrency(settings.concurrency, minimum, clock=self.clock)
        self.breaker = CircuitBreaker(threshold=settings.breaker_threshold, clock=self.clock)
        self.backoff = Backoff(
            base=settings.backoff_base, cap=settings.backoff_cap, rng=rng or random.Random()
        )
        floor = settings.retry_budget
        self.budget = RetryBudget(
            max(10, 2 * settings.concurrency) if floor is None else floor, settings.retry_budget_ratio
        )
        url = getattr(transport, "url", None) or settings.base_url or "the configured server"
        self.reach = Reachability(
            str(url).removesuffix("/chat/completions"),
            patience=settings.unreachable_after,
            timeout=settings.timeout,
            clock=self.clock,
        )
        self.ratewatch = RateLimitWatch(
            max_stall=settings.rate_limit_max_stall,
            max_total=settings.rate_limit_max_wait,
            notice_every=settings.rate_limit_notice_every,
            clock=self.clock,
            notify=context.log.warning,
        )
        self.latency = 0.0  # moving average of successful round trips, seconds
        self.completion_mean: float | None = None  # moving average of completion tokens
        self.prompt_ratio = 1.0  # moving average of reported / counted prompt tokens
        self.waits: list[float] = []  # backoff waits, for tests and diagnostics (bounded)
        # Told +1 when a request starts sleeping before a retry and -1 when it wakes (run()
        # starts a spare worker so that the slot it released keeps working).
        self.on_backoff: Callable[[int], None] = lambda change: None
        # What a worker calls per request: answer(), or a wrapper (structured output, see
        # generate_chat) that calls answer() with bodies of its own.
        self.respond: Callable[[GenerationRequest], Awaitable[GenerationOutcome]] = self.answer

    # -- token estimates --------------------------------------------------------------------------

    def count_prompt(self, request: GenerationRequest, body: dict[str, Any]) -> int:
        """The request's prompt tokens as tiktoken counts them."""
        try:
            return count_messages(body["messages"], request.model or self.settings.model)
        except ConfigError:  # no tiktoken encoding available: a rough estimate still paces
            return sum(len(str(m.get("content") or "")) for m in body["messages"]) // 4 + 8

    def estimate_tokens(self, request: GenerationRequest, prompt_count: int) -> int:
        """What a request will cost against a tokens budget: its counted prompt, scaled by how the
        server's reported prompt usage has compared with our counts so far, plus the completion
        we expect (the running mean of real completions once known, else
        ``completion_tokens_estimate``; never above max_tokens)."""
        expected = (
            self.completion_mean
            if self.completion_mean is not None
            else self.settings.completion_tokens_estimate
        )
        if request.params.max_tokens is not None:
            expected = min(expected, request.params.max_tokens)
        return round(prompt_count * self.prompt_ratio) + int(expected)

    def _learn(self, latency: float, completion_tokens: int) -> None:
        self.latency = latency if self.latency == 0 else 0.9 * self.latency + 0.1 * latency
        if completion_tokens > 0:
            mean = self.completion_mean
            self.completion_mean = completion_tokens if mean is None else 0.9 * mean + 0.1 * completion_tokens

    # -- one request ------------------------------------------------------------------------------

    async def answer(
        self, request: GenerationRequest, body: dict[str, Any] | None = None
    ) -> GenerationOutcome:
        """Answer one request (sending ``body``, by default the request's own), retrying as
        needed; fatal refusals raise GenerationError, a refused ``response_format``
        :class:`~.structured.FormatRefused` at once."""
        assert request.key is not None
        settings, event = self.settings, self.context.event
        body = body if body is not None else request_body(request, settings)
        estimate = 0
        prompt_count: int | None = None
        attempt = 0
        while True:
            attempt += 1
            if self.breaker.state != "closed":
                await self.breaker.wait()
            await self.slots.acquire()
            if self.limiter.needs_token_estimates:  # known only now, perhaps: check after the wait
                if prompt_count is None:
                    prompt_count = self.count_prompt(request, body)
                estimate = self.estimate_tokens(request, prompt_count)
            started = self.clock.now()
            paced = self.limiter.active  # sent while a budget was known (for the 429 count)
            reply: Reply | None = None
            unreached: TransportError | None = None
            try:
                charged = await self.limiter.acquire(estimate)
                started = self.clock.now()
                self.reach.on_attempt()
                reply = await self.transport.post_chat(body)
            except TransportError as error:
                problem = str(error)
                unreached = error
                event("timeouts" if error.kind == "timeout" else "connection_errors")
            finally:
                self.slots.release()
            wait_hint: float | None = None
            if reply is not None:
                self.reach.on_reply()
                if reply.status != 429:
                    self.ratewatch.on_answer()
                self.limiter.observe(LimitHeaders.parse(reply.headers), refused=reply.status == 429)
                kind = classify_status(reply.status, reply.error, reply.code)
                if kind != "ok" and "response_format" in body and refuses_format(reply.status, reply.error):
                    raise FormatRefused(reply.status, reply.error or f"HTTP {reply.status}", attempt)
                if kind == "ok" and reply.completion is not None:
                    completion = reply.completion
                    self.slots.on_success()
                    self.breaker.on_success()
                    self.budget.on_success()
                    used = completion.prompt_tokens + completion.completion_tokens
                    self.limiter.settle(charged, used)
                    self._learn(self.clock.now() - started, completion.completion_tokens)
                    if prompt_count and completion.prompt_tokens:
                        ratio = completion.prompt_tokens / prompt_count
                        self.prompt_ratio = 0.9 * self.prompt_ratio + 0.1 * ratio
                    if completion.text is None:
                        why = f"refusal: {completion.refusal}" if completion.refusal else "empty"
                        return GenerationOutcome(
                            key=request.key, error=f"no content ({why})", attempts=attempt
                        )
                    return GenerationOutcome(
                        key=request.key,
                        text=completion.text,
                        finish_reason=completion.finish_reason,
                        model=completion.model,
                        usage=Usage(
                            prompt_tokens=completion.prompt_tokens,
                            completion_tokens=completion.completion_tokens,
                        ),
                        attempts=attempt,
                        response_id=completion.response_id,
                    )
                if kind == "ok":
                    problem = f"malformed response: {reply.malformed}"
                    event("malformed")
                    self.breaker.on_other_failure()
                elif kind == "fatal":
                    quota = reply.code and reply.status == 429
                    why = f"{reply.status}, {reply.code}" if quota else reply.status
                    raise GenerationError(
                        f"{settings.model}: the server refused the request ({why}): {reply.error}"
                    )
                elif kind == "failed":
                    self.breaker.on_success()  # an answer, not a rate limit: the 429 streak ends
                    return GenerationOutcome(
                        key=request.key, error=f"HTTP {reply.status}: {reply.error}", attempts=attempt
                    )
                else:
                    problem = f"HTTP {reply.status}: {reply.error}"
                    wait_hint = retry_after(reply.headers)
                    if reply.status == 429:
                        event("rate_limited")
                        if paced:
                            event("rate_limited_paced")
                        if self.slots.on_rate_limited(self.latency):
                            event("concurrency_shrinks")
                        if self.breaker.on_rate_limited(wait_hint):
                            event("breaker_opened")
                    else:
                        event("server_errors")
                        self.breaker.on_other_failure()
            else:
                self.breaker.on_other_failure()
            last_try = attempt > settings.max_retries
            rate_limited = reply is not None and reply.status == 429
            # 429s wait under the rate-limit watch; every other retry spends the run's budget.
            if not last_try and not rate_limited and not self.budget.spend():
                if unreached is not None:
                    self.reach.on_failure(unreached.reason, problem, last_try=True)
                return GenerationOutcome(
                    key=request.key,
                    error=f"{problem} (not retried: the run's retry budget is spent)",
                    attempts=attempt,
                )
            if unreached is not None:
                self.reach.on_failure(unreached.reason, problem, last_try=last_try)
            if last_try:
                return GenerationOutcome(
                    key=request.key, error=f"{problem} (gave up after {attempt} attempts)", attempts=attempt
                )
            if wait_hint is not None and wait_hint > settings.max_retry_after:
                return GenerationOutcome(
                    key=request.key,
                    error=f"{problem}; the server asked to wait {wait_hint:.0f}s, more than "
                    f"max_retry_after ({settings.max_retry_after:.0f}s)",
                    attempts=attempt,
                )
            wait = self.backoff.delay(attempt - 1, wait_hint)
            if rate_limited:
                assert reply is not None
                paused = self.breaker.open_until - self.clock.now() if self.breaker.state == "open" else 0.0
                self.ratewatch.on_rate_limited(max(wait, paused), reply.error, wait_hint)
            if len(self.waits) < 10_000:
                self.waits.append(wait)
            event("retries")
            self.on_backoff(1)
            try:
                await self.clock.sleep(wait)
            finally:
                self.on_backoff(-1)

    # -- the stream -------------------------------------------------------------------------------

    async def run(self, requests: AsyncIterator[GenerationRequest]) -> AsyncIterator[GenerationOutcome]:
        """Answer every request from ``requests``; yield outcomes as they land, in any order.

        One worker per slot pulls requests. A worker whose request sleeps before a retry
        starts a spare first, so the slot it released keeps working (at most twice as many
        workers as slots), and a worker stops after an answer while more workers are awake
        than there are slots."""
        results: asyncio.Queue[Any] = asyncio.Queue()
        feed_lock = asyncio.Lock()
        exhausted = False
        slots = self.settings.concurrency
        tasks: set[asyncio.Task[None]] = set()
        awake = 0  # workers not sleeping before a retry
        running = 0  # workers started and not yet done

        async def next_request() -> GenerationRequest | None:
            nonlocal exhausted
            async with feed_lock:  # an async generator may not be advanced by two tasks at once
                if exhausted:
                    return None
                request = await anext(requests, None)
                exhausted = request is None
                return request

        async def worker() -> None:
            nonlocal awake
            try:
                while (request := await next_request()) is not None:
                    results.put_nowait(await self.respond(request))
                    if awake > slots:  # a spare's sleeper woke up: one of us can go
                        break
            except BaseException as error:
                results.put_nowait(error)
                raise
            finally:
                awake -= 1
                results.put_nowait(_DONE)

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if not task.cancelled():
                task.exception()  # delivered through ``results`` already

        def start_worker() -> None:
            nonlocal awake, running
            awake += 1
            running += 1
            task = asyncio.create_task(worker())
            tasks.add(task)
            task.add_done_callback(finished)

        def on_backoff(change: int) -> None:
            nonlocal awake
            awake -= change
            if change > 0 and awake < slots and running < 2 * slots and not exhausted:
                start_worker()

        self.on_backoff = on_backoff
        for _ in range(slots):
            start_worker()
        notices = asyncio.create_task(self._rate_limit_notices())
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
            notices.cancel()
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(notices, *tasks, return_exceptions=True)
            await self.transport.aclose()

    async def _rate_limit_notices(self) -> None:
        """Keep saying we are rate limited while every request sleeps (a breaker pause can
        last a minute with no answer arriving to trigger a line)."""
        while True:
            await asyncio.sleep(min(1.0, self.settings.rate_limit_notice_every))
            self.ratewatch.maybe_notice()


def generate_chat(
    requests: AsyncIterator[GenerationRequest],
    settings: OpenAIGenerateSettings,
    context: RunContext,
    *,
    modes: tuple[Mode, ...] = KINDS["openai"].modes,
) -> AsyncIterator[GenerationOutcome]:
    """Answer every request; yield outcomes as they land (see :class:`ChatEngine`).
    Structured-output requests try ``modes`` in order (see :mod:`.structured`)."""
    try:
        transport = make_transport(
            settings.transport,
            base_url=settings.base_url,
            api_key_env=settings.api_key_env,
            timeout=settings.timeout,
            max_connections=settings.concurrency,
        )
    except (ValueError, RuntimeError) as error:  # the openai client's errors come as RuntimeError
        raise ConfigError(f"openai client: {error}") from None
    engine = ChatEngine(settings, context, transport)
    base = resolve_base_url(settings.base_url) or DEFAULT_BASE_URL
    book = ModeBook(modes, context, f"structured-mode:{base}|{settings.model}")
    engine.respond = structured_responder(
        engine.answer, lambda request: request_body(request, settings), book, context
    )
    return engine.run(requests)
