"""The generation engine's controls, with an injected clock: rate-limit headers and budgets,
Retry-After and backoff, adaptive concurrency, the circuit breaker."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from typing import Any

import pytest
from synthtune.core.models import ChatMessage, GenerationRequest, RunContext
from synthtune.core.testing import FakeOpenAI, Reply
from synthtune.plugins.openai.breaker import CircuitBreaker
from synthtune.plugins.openai.clock import Clock
from synthtune.plugins.openai.concurrency import AdaptiveConcurrency
from synthtune.plugins.openai.generate import ChatEngine, OpenAIGenerateSettings
from synthtune.plugins.openai.ratelimit import LimitHeaders, RateLimiter, parse_duration, retry_after
from synthtune.plugins.openai.transport import make_transport


class FakeClock(Clock):
    """Time moves only when someone sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


# -- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("2m", 120.0)],
)
def test_reset_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", [None, "", "soon", "5x", "1s later"])
def test_unreadable_durations_are_none(text: str | None) -> None:
    assert parse_duration(text) is None


def test_retry_after_prefers_milliseconds_and_reads_dates() -> None:
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == pytest.approx(1.5)
    assert retry_after({"retry-after": "3"}) == 3.0
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 27 <= (retry_after({"retry-after": later}) or 0) <= 31
    assert retry_after({"retry-after": "whenever"}) is None
    assert retry_after({}) is None


def test_rate_limit_headers_parse() -> None:
    info = LimitHeaders.parse(
        {
            "x-ratelimit-limit-requests": "600",
            "x-ratelimit-remaining-requests": "599",
            "x-ratelimit-reset-requests": "100ms",
            "x-ratelimit-limit-tokens": "150000",
            "x-ratelimit-remaining-tokens": "149000",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert info == LimitHeaders(600, 599, 0.1, 150000, 149000, 360.0)
    assert LimitHeaders.parse({"content-type": "application/json"}) is None


# -- budgets ----------------------------------------------------------------------------------


def test_request_budget_paces_at_the_configured_rate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, clock=clock)  # one per second, a one-second burst

    async def go() -> None:
        for _ in range(4):
            await limiter.acquire()

    asyncio.run(go())
    assert clock.sleeps == pytest.approx([1.0, 1.0, 1.0])


def test_token_budget_charges_the_estimate_and_settles_with_usage() -> None:
    clock = FakeClock()
    limiter = RateLimiter(tpm=600, clock=clock)  # 10 tokens per second, 10 in the bucket

    async def go() -> None:
        assert await limiter.acquire(10) == 10  # full bucket: no wait
        assert clock.sleeps == []
        limiter.settle(10, 4)  # the answer used 4: 6 come back
        await limiter.acquire(6)
        assert clock.sleeps == []
        await limiter.acquire(5)  # the bucket is empty: half a second
        assert clock.sleeps == pytest.approx([0.5])
        limiter.settle(5, 15)  # it used 10 more than estimated: the debt is paid by waiting
        await limiter.acquire(1)
        assert clock.sleeps[-1] == pytest.approx(1.1)

    asyncio.run(go())


def test_limits_are_learned_from_headers_with_headroom_and_start_empty() -> None:
    clock = FakeClock()
    limiter = RateLimiter(headroom=0.5, clock=clock)
    assert not limiter.active

    async def go() -> None:
        await limiter.acquire()  # nothing known: no pacing
        assert clock.sleeps == []
        limiter.observe(LimitHeaders.parse({"x-ratelimit-limit-requests": "120"}))  # 1/s at 0.5
        assert limiter.active and limiter.requests is not None
        assert limiter.requests.per_minute == pytest.approx(60)
        await limiter.acquire()  # learned budgets start empty
        assert clock.sleeps == pytest.approx([1.0])

    asyncio.run(go())


def test_configured_limit_caps_a_learned_one_and_exhaustion_empties_the_bucket() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, clock=clock)
    limiter.observe(LimitHeaders.parse({"x-ratelimit-limit-requests": "6000"}))
    assert limiter.requests is not None and limiter.requests.per_minute == 60
    limiter.observe(
        LimitHeaders.parse({"x-ratelimit-limit-requests": "6000", "x-ratelimit-remaining-requests": "0"})
    )

    async def go() -> None:
        await limiter.acquire()

    asyncio.run(go())
    assert clock.sleeps == pytest.approx([1.0])  # the full bucket was emptied by "remaining: 0"


def test_tokens_budget_needs_estimates_only_once_known() -> None:
    limiter = RateLimiter(clock=FakeClock())
    assert not limiter.needs_token_estimates
    limiter.observe(LimitHeaders.parse({"x-ratelimit-limit-tokens": "60000"}))
    assert limiter.needs_token_estimates


# -- adaptive concurrency -------------------------------------------------------------------


def test_concurrency_halves_once_per_burst_and_grows_back() -> None:
    clock = FakeClock()
    slots = AdaptiveConcurrency(8, clock=clock, window=1.0)
    assert slots.on_rate_limited() and slots.limit == 4
    assert not slots.on_rate_limited()  # same burst
    clock.t += 1.5
    assert slots.on_rate_limited() and slots.limit == 2
    successes = 0
    while slots.limit < 8:
        slots.on_success()
        successes += 1
    assert slots.limit == 8
    assert 20 < successes < 40  # about one slot per round trip (limit successes)
    slots.on_success()
    assert slots.limit == 8


def test_concurrency_limit_holds_requests_back() -> None:
    async def go() -> None:
        slots = AdaptiveConcurrency(4, clock=FakeClock())
        slots.on_rate_limited()  # limit 2
        await slots.acquire()
        await slots.acquire()
        third = asyncio.create_task(slots.acquire())
        await asyncio.sleep(0)
        assert not third.done() and slots.in_flight == 2
        slots.release()
        await asyncio.sleep(0)
        assert third.done() and slots.in_flight == 2

    asyncio.run(go())


# -- circuit breaker ------------------------------------------------------------------------


def test_breaker_opens_when_429s_persist_and_closes_after_a_good_probe() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=3, persist=1.0, cooldown=2.0, clock=clock)
    for _ in range(5):  # one burst, all at once: not persisting
        assert not breaker.on_rate_limited()
    clock.t += 1.0
    assert breaker.on_rate_limited(retry_after=5.0)
    assert breaker.state == "open"

    async def go() -> None:
        waiters = [asyncio.create_task(breaker.wait()) for _ in range(3)]
        for _ in range(5):
            await asyncio.sleep(0)
        assert sum(w.done() for w in waiters) == 1  # one probe goes, the rest wait
        assert clock.sleeps[0] == pytest.approx(5.0)  # the Retry-After beat the cooldown
        assert breaker.state == "half_open"
        breaker.on_success()
        await asyncio.sleep(0)
        assert all(w.done() for w in waiters) and breaker.state == "closed"

    asyncio.run(go())


def test_breaker_reopens_with_a_longer_cooldown_when_the_probe_is_refused() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(threshold=1, persist=0.0, cooldown=1.0, clock=clock)
    assert breaker.on_rate_limited()

    async def go() -> None:
        await breaker.wait()  # sleeps the cooldown, then is the probe
        assert breaker.on_rate_limited()
        assert breaker.cooldown == 2.0 and breaker.state == "open"
        await breaker.wait()
        assert clock.sleeps == pytest.approx([1.0, 2.0])
        breaker.on_success()
        assert breaker.cooldown == 1.0

    asyncio.run(go())


# -- the engine against a real HTTP server -------------------------------------------------


def _request(n: int) -> GenerationRequest:
    request = GenerationRequest(
        messages=[ChatMessage(role="user", content=f"hello {n}")], model="gpt-4.1-mini"
    )
    request.key = request.compute_key()
    return request


async def _answer_all(engine: ChatEngine, requests: list[GenerationRequest]) -> list[Any]:
    async def feed() -> Any:
        for request in requests:
            yield request

    return [outcome async for outcome in engine.run(feed())]


def _engine(server: FakeOpenAI, clock: Clock, events: list[str], **settings: Any) -> ChatEngine:
    config = OpenAIGenerateSettings(base_url=server.base_url, **settings)
    transport = make_transport(
        config.transport, base_url=server.base_url, api_key_env="OPENAI_API_KEY", timeout=5, max_connections=4
    )
    context = RunContext(run_id="t", seed=0, _event=lambda name, n: events.extend([name] * n))
    return ChatEngine(config, context, transport, clock=clock, rng=random.Random(0))


@pytest.mark.parametrize("transport", ["direct", "aiohttp"])
def test_retry_after_from_the_server_is_honoured(workdir: object, transport: str) -> None:
    calls: dict[str, int] = {}

    def responder(body: dict[str, Any]) -> Reply | str:
        n = calls[body["messages"][0]["content"]] = calls.get(body["messages"][0]["content"], 0) + 1
        if n == 1:
            return Reply(status=429, headers={"retry-after-ms": "2500"}, error_message="slow down")
        if n == 2:
            return Reply(status=503, headers={"retry-after": "4"})
        return "fine"

    clock, events = FakeClock(), []
    with FakeOpenAI(responder) as server:
        engine = _engine(server, clock, events, transport=transport)
        [outcome] = asyncio.run(_answer_all(engine, [_request(1)]))
    assert outcome.text == "fine" and outcome.attempts == 3
    assert len(engine.waits) == 2
    assert 2.5 <= engine.waits[0] <= 2.5 * 1.1  # never less than asked, a little jitter
    assert 4.0 <= engine.waits[1] <= 4.0 * 1.1
    assert events.count("retries") == 2 and events.count("rate_limited") == 1


def test_backoff_without_retry_after_is_exponential_with_full_jitter(workdir: object) -> None:
    clock, events = FakeClock(), []
    with FakeOpenAI(lambda body: Reply(status=500)) as server:
        engine = _engine(server, clock, events, max_retries=6, backoff_base=1.0, backoff_cap=8.0)
        [outcome] = asyncio.run(_answer_all(engine, [_request(1)]))
        assert server.chat_count == 7
    assert outcome.error is not None and "gave up after 7 attempts" in outcome.error
    caps = [1, 2, 4, 8, 8, 8]
    assert len(engine.waits) == 6
    assert all(0 <= wait <= cap for wait, cap in zip(engine.waits, caps, strict=True))
    assert events.count("server_errors") == 7


def test_learned_limits_pace_requests_from_headers(workdir: object) -> None:
    clock, events = FakeClock(), []
    with FakeOpenAI(rpm=6000, tpm=10**6) as server:  # headers on every answer
        engine = _engine(server, clock, events)
        outcomes = asyncio.run(_answer_all(engine, [_request(n) for n in range(5)]))
    assert all(o.ok for o in outcomes)
    assert engine.limiter.requests is not None and engine.limiter.tokens is not None
    assert engine.limiter.requests.per_minute == pytest.approx(6000 * 0.98)
    assert engine.limiter.tokens.per_minute == pytest.approx(10**6 * 0.98)
    assert engine.completion_mean is not None  # completion estimates learned from usage


def test_a_400_fails_the_request_without_retrying(workdir: object) -> None:
    clock, events = FakeClock(), []
    with FakeOpenAI(lambda body: Reply(status=400, error_message="prompt too long")) as server:
        engine = _engine(server, clock, events)
        [outcome] = asyncio.run(_answer_all(engine, [_request(1)]))
        assert server.chat_count == 1
    assert outcome.error == "HTTP 400: prompt too long" and outcome.attempts == 1


class ScriptedTransport:
    """In-process transport: the first attempt of each request named in ``fail_first`` gets a
    500; every answer takes a few ms. Records the most requests in flight at once."""

    def __init__(self, fail_first: set[str]) -> None:
        self.fail_first = set(fail_first)
        self.in_flight = 0
        self.most_in_flight_while_sleeping = 0
        self.sleeping = 0

    async def post_chat(self, body: dict[str, Any]) -> Any:
        from synthtune.plugins.openai.transport import Completion
        from synthtune.plugins.openai.transport import Reply as HttpReply

        self.in_flight += 1
        if self.sleeping:
            self.most_in_flight_while_sleeping = max(self.most_in_flight_while_sleeping, self.in_flight)
        await asyncio.sleep(0.002)
        self.in_flight -= 1
        name = body["messages"][0]["content"]
        if name in self.fail_first:
            self.fail_first.discard(name)
            return HttpReply(500, {}, error="scripted")
        return HttpReply(200, {}, completion=Completion(name, "stop", "m", "id", 1, 1))

    async def aclose(self) -> None:
        pass


class GateClock(Clock):
    """Backoff sleeps wait until the test opens the gate (or ``until`` sleepers are waiting)."""

    def __init__(self, transport: ScriptedTransport, until: int) -> None:
        self.transport, self.until = transport, until
        self.gate = asyncio.Event()
        self.most_sleeping = 0

    async def sleep(self, seconds: float) -> None:
        self.transport.sleeping += 1
        self.most_sleeping = max(self.most_sleeping, self.transport.sleeping)
        if self.transport.sleeping >= self.until:
            self.gate.set()
        try:
            await asyncio.wait_for(self.gate.wait(), timeout=0.5)
        except TimeoutError:
            self.gate.set()
        finally:
            self.transport.sleeping -= 1


def _scripted_engine(transport: ScriptedTransport, clock: Clock, concurrency: int) -> ChatEngine:
    # Every first attempt may fail here before any answer: a budget for all of those retries.
    config = OpenAIGenerateSettings(
        concurrency=concurrency, base_url="http://127.0.0.1:9/v1", retry_budget=100
    )
    context = RunContext(run_id="t", seed=0, _event=lambda name, n: None)
    return ChatEngine(config, context, transport, clock=clock, rng=random.Random(0))


def test_a_request_waiting_to_retry_does_not_hold_its_slot_idle() -> None:
    transport = ScriptedTransport(fail_first={"hello 0"})
    clock = GateClock(transport, until=99)  # the one sleeper waits until the others are done
    engine = _scripted_engine(transport, clock, concurrency=2)
    outcomes = asyncio.run(_answer_all(engine, [_request(n) for n in range(12)]))
    assert sorted(o.text for o in outcomes) == sorted(f"hello {n}" for n in range(12))
    # while "hello 0" slept before its retry, both slots kept working on the other requests
    assert transport.most_in_flight_while_sleeping == 2


def test_requests_waiting_to_retry_are_bounded_by_twice_the_slots() -> None:
    names = {f"hello {n}" for n in range(20)}
    transport = ScriptedTransport(fail_first=names)  # every first attempt fails
    clock = GateClock(transport, until=99)  # sleepers pile up until the gate times out
    engine = _scripted_engine(transport, clock, concurrency=2)
    outcomes = asyncio.run(_answer_all(engine, [_request(n) for n in range(20)]))
    assert all(o.ok for o in outcomes) and len(outcomes) == 20
    assert clock.most_sleeping == 4  # spares were started, but never more than 2 x 2 workers
