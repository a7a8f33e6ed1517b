"""The pieces behind the reliability guarantees, one at a time (the end-to-end probes are in
test_reliability.py)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from synthtune.core.errors import BusyError, GenerationError
from synthtune.core.failfast import FailFast, failure_kind
from synthtune.core.models import GenerationOutcome
from synthtune.core.nesting import TooDeep, check_depth, loads_json
from synthtune.core.runlock import FileLock, hold_run_locks
from synthtune.core.terminal import for_stream, printable
from synthtune.core.trust import is_known, is_local
from synthtune.plugins.openai.clock import Clock
from synthtune.plugins.openai.ratewatch import RateLimitWatch
from synthtune.plugins.openai.reachability import Reachability, connection_reason
from synthtune.plugins.openai.retry import RetryBudget, classify_status


class FakeClock(Clock):
    def __init__(self) -> None:
        self.t = 100.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


# -- classification ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "code", "kind"),
    [
        (200, None, None, "ok"),
        (400, "prompt too long", "context_length_exceeded", "failed"),
        (422, "unprocessable", None, "failed"),
        (401, "bad key", None, "fatal"),
        (403, "forbidden", None, "fatal"),
        (404, "no such model", "model_not_found", "fatal"),
        (429, "slow down", "rate_limit_exceeded", "retry"),
        (429, "You exceeded your current quota", "insufficient_quota", "fatal"),
        (408, "timeout", None, "retry"),
        (409, "conflict", None, "retry"),
        (500, "The server had an error while processing your request", None, "retry"),
        (503, "Loading model", "unavailable_error", "retry"),
        (500, "1 validation error for CreateChatCompletionRequest", "internal_server_error", "failed"),
        (500, "response_format type json_schema is not supported", None, "failed"),
        (500, "oops", "invalid_request_error", "failed"),
        (502, "bad gateway", None, "retry"),
    ],
)
def test_answers_that_will_not_change_are_not_retried(
    status: int, message: str, code: str, kind: str
) -> None:
    assert classify_status(status, message, code) == kind


def test_the_retry_budget_is_earned_by_answers() -> None:
    budget = RetryBudget(floor=2, ratio=0.5)
    assert budget.spend() and budget.spend() and not budget.spend()
    budget.on_success()
    assert not budget.spend()  # half a retry
    budget.on_success()
    assert budget.spend() and budget.spent == 3


# -- reachability -------------------------------------------------------------------------------------


def _chain(outer: BaseException, inner: BaseException) -> BaseException:
    outer.__cause__ = inner
    return outer


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ConnectionRefusedError(111, "Connect call failed"), "refused"),
        (_chain(RuntimeError("Connection error."), ConnectionRefusedError(111, "refused")), "refused"),
        (socket.gaierror(-2, "Name or service not known"), "dns"),
        (ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number"), "tls"),
        (aiohttp.ServerDisconnectedError(), "reset"),
        (RuntimeError("httpx.ConnectError: [Errno 111] Connection refused"), "refused"),
        (RuntimeError("something else"), "other"),
    ],
)
def test_connection_failures_are_told_apart(error: BaseException, reason: str) -> None:
    assert connection_reason(error) == reason


def test_an_unreachable_server_stops_after_patience_but_not_once_it_has_answered() -> None:
    clock = FakeClock()
    reach = Reachability("http://x/v1", patience=3.0, timeout=60, clock=clock)
    reach.on_attempt()
    reach.on_failure("refused", "nope")
    clock.t += 1
    reach.on_failure("refused", "nope")  # 1 s in: retried
    clock.t += 2.5
    with pytest.raises(GenerationError, match="cannot reach the server at http://x/v1: connection refused"):
        reach.on_failure("refused", "nope")
    answered = Reachability("http://x/v1", patience=3.0, timeout=60, clock=clock)
    answered.on_attempt()
    answered.on_reply()
    clock.t += 100
    answered.on_failure("refused", "nope")  # transient once the server has answered


def test_a_tls_failure_stops_at_once() -> None:
    reach = Reachability("https://x/v1", patience=3.0, timeout=60, clock=FakeClock())
    reach.on_attempt()
    with pytest.raises(GenerationError, match="TLS handshake failed"):
        reach.on_failure("tls", "wrong version number")


# -- rate limits --------------------------------------------------------------------------------------


def test_a_429_stall_is_announced_and_capped() -> None:
    clock, lines = FakeClock(), []
    watch = RateLimitWatch(max_stall=30, max_total=100, notice_every=5, clock=clock, notify=lines.append)
    watch.on_rate_limited(1.0, "Rate limit reached", 1.0)
    assert lines == []  # a lone 429 is not worth a line
    clock.t += 6
    watch.on_rate_limited(8.0, "Rate limit reached", None)
    assert lines and lines[0].startswith("rate limited: waiting 8s (server says: Rate limit reached)")
    clock.t += 2
    watch.maybe_notice()
    assert len(lines) == 1  # at most one line every 5 s
    clock.t += 4
    watch.maybe_notice()
    assert len(lines) == 2
    clock.t += 10  # 22 s stalled; a 10 s wait would end past 30
    with pytest.raises(GenerationError, match="no answer for 22s .* past generate.rate_limit_max_stall"):
        watch.on_rate_limited(10.0, "Rate limit reached", None)


def test_rate_limit_stalls_add_up_to_the_total_cap() -> None:
    clock = FakeClock()
    watch = RateLimitWatch(max_stall=30, max_total=40, notice_every=5, clock=clock, notify=lambda line: None)
    for _ in range(2):
        watch.on_rate_limited(1.0, "slow", None)
        clock.t += 19
        watch.on_answer()
    assert watch.total == pytest.approx(38)
    with pytest.raises(GenerationError, match="rate limited for 38s in all"):
        watch.on_rate_limited(5.0, "slow", None)


# -- the core's fail-fast -----------------------------------------------------------------------------


def _failed(error: str) -> GenerationOutcome:
    return GenerationOutcome(key="k", error=error, attempts=1)


def test_failure_kinds_ignore_numbers_and_retry_notes() -> None:
    assert failure_kind("HTTP 400: prompt has 5012 tokens (gave up after 9 attempts)") == failure_kind(
        "HTTP 400: prompt has 611 tokens (not retried: the run's retry budget is spent)"
    )


def test_fail_fast_stops_on_the_same_failure_and_never_after_a_success() -> None:
    watch = FailFast(same=3, any_kind=5)
    watch.observe(_failed("HTTP 500: boom"))
    watch.observe(_failed("HTTP 500: boom (gave up after 2 attempts)"))
    with pytest.raises(GenerationError, match="the server rejects every request: the first 3 all failed"):
        watch.observe(_failed("HTTP 500: boom"))
    mixed = FailFast(same=3, any_kind=5)
    for n in range(4):
        mixed.observe(_failed(f"error kind {'abcd'[n]}"))
    with pytest.raises(GenerationError, match="5 kinds of error"):
        mixed.observe(_failed("yet another"))
    lucky = FailFast(same=3, any_kind=5)
    lucky.observe(GenerationOutcome(key="k", text="fine"))
    for _ in range(10):
        lucky.observe(_failed("HTTP 500: boom"))  # a partial run, not a dead server


# -- depth, terminal text, trust, locks ----------------------------------------------------------------


def test_nesting_is_limited_without_recursion() -> None:
    check_depth([[[1]]], limit=3)
    with pytest.raises(TooDeep):
        check_depth([[[[1]]]], limit=3)
    with pytest.raises(TooDeep):
        loads_json("[" * 100_000 + "]" * 100_000)


def test_printable_strips_controls_but_keeps_text() -> None:
    text = "a\x1b]0;title\x07b\x1b[2Jc\x1b[1;31md\x1b[0m\te\nf\rg\x00h\x9b2Ji\u202ej"
    assert printable(text) == "abcd\te\nfghij"

    class Tty:
        def isatty(self) -> bool:
            return True

    class File:
        def isatty(self) -> bool:
            return False

    assert for_stream("\x1b[2Jx", Tty()) == "x"  # type: ignore[arg-type]
    assert for_stream("\x1b[2Jx", File()) == "\x1b[2Jx"  # type: ignore[arg-type]


def test_known_and_local_hosts() -> None:
    assert is_known("api.openai.com", ["api.openai.com"]) and is_known(
        "me.openai.azure.com", ["*.openai.azure.com"]
    )
    assert not is_known("api.openai.com.evil.example", ["api.openai.com", "*.openai.azure.com"])
    assert is_local("localhost") and is_local("127.0.0.5") and is_local("::1")
    assert not is_local("192.168.1.5") and not is_local("example.com")


def test_a_lock_names_its_holder_and_is_released(tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    with hold_run_locks(store, tmp_path / "out"):
        with pytest.raises(BusyError, match=r"run store .*s\.db is in use by PID \d+"):
            with hold_run_locks(store, tmp_path / "other"):
                pass
        with pytest.raises(BusyError, match="output folder"):
            with hold_run_locks(tmp_path / "t.db", tmp_path / "out"):
                pass
    with hold_run_locks(store, tmp_path / "out"):  # free again
        pass
    lock = FileLock(tmp_path / "x.lock", "thing")
    lock.acquire()
    lock.release()
    lock.acquire()
    lock.release()


def test_the_engine_stops_a_storm_of_429s(workdir: Any) -> None:
    """Through the real engine and the stand-in server, with an injected clock."""
    import random

    from synthtune.core.models import ChatMessage, GenerationRequest, RunContext
    from synthtune.core.testing import FakeOpenAI, Reply
    from synthtune.plugins.openai.generate import ChatEngine, OpenAIGenerateSettings
    from synthtune.plugins.openai.transport import make_transport

    lines: list[str] = []

    class Log:
        def warning(self, line: str) -> None:
            lines.append(line)

    with FakeOpenAI(
        lambda body: Reply(status=429, error_message="Rate limit reached", headers={"retry-after": "2"})
    ) as server:
        config = OpenAIGenerateSettings(base_url=server.base_url, concurrency=2, rate_limit_max_stall=20)
        transport = make_transport(
            "direct", base_url=server.base_url, api_key_env="OPENAI_API_KEY", timeout=5, max_connections=2
        )
        context = RunContext(run_id="t", seed=0, log=Log())  # type: ignore[arg-type]
        engine = ChatEngine(config, context, transport, clock=FakeClock(), rng=random.Random(0))

        async def answer_all() -> list[Any]:
            async def feed() -> Any:
                for n in range(5):
                    request = GenerationRequest(
                        messages=[ChatMessage(role="user", content=f"hi {n}")], model="m"
                    )
                    request.key = request.compute_key()
                    yield request

            return [outcome async for outcome in engine.run(feed())]

        with pytest.raises(
            GenerationError,
            match="rate limited: no answer for .*server says: Rate limit reached; retry after 2s",
        ):
            asyncio.run(answer_all())
        assert server.chat_count <= 2 * 10  # a handful of tries per slot within 20 s of waits
    assert any(line.startswith("rate limited: waiting") for line in lines)
