"""Request- and token-per-minute budgets, from settings or learned from ``x-ratelimit-*`` headers.

Each budget is a token bucket refilled continuously at ``limit / 60`` per second that holds at most
``burst_seconds`` worth (providers enforce per-minute limits over shorter windows too, so a full
minute's burst would be refused). A request waits, in arrival order, until both budgets can pay
for it: one request, and its estimated tokens. The estimate is corrected by the usage the response
reports (:meth:`RateLimiter.settle`).

Limits learned from headers are scaled by ``headroom`` (a little below the server's own limit, so
clock skew and in-flight requests do not trip it) and never raise a limit set in the settings.
A response saying ``remaining: 0`` empties the matching bucket, so the next request waits.
"""

from __future__ import annotations

import asyncio
import email.utils
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from synthtune.plugins.openai.clock import Clock

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(text: str | None) -> float | None:
    """OpenAI reset durations (``1s``, ``6m0s``, ``20ms``, ``1h2m3.5s``, or plain seconds)
    in seconds; ``None`` when absent or unreadable."""
    if not text:
        return None
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    scale = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(n) * scale[u] for n, u in parts)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks to wait: ``retry-after-ms``, else ``retry-after`` (seconds or an
    HTTP date); ``None`` when absent or unreadable."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(float(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class LimitHeaders:
    """One response's view of its rate limits (any field may be missing)."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    reset_tokens: float | None = None

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> LimitHeaders | None:
        """The ``x-ratelimit-*`` headers of a response, or ``None`` when it has none."""
        get = headers.get
        if get("x-ratelimit-limit-requests") is None and get("x-ratelimit-limit-tokens") is None:
            return None
        return cls(
            limit_requests=_int(get("x-ratelimit-limit-requests")),
            remaining_requests=_int(get("x-ratelimit-remaining-requests")),
            reset_requests=parse_duration(get("x-ratelimit-reset-requests")),
            limit_tokens=_int(get("x-ratelimit-limit-tokens")),
            remaining_tokens=_int(get("x-ratelimit-remaining-tokens")),
            reset_tokens=parse_duration(get("x-ratelimit-reset-tokens")),
        )


class Budget:
    """A token bucket for one per-minute limit (requests or tokens)."""

    def __init__(self, per_minute: float, burst_seconds: float, now: float, *, full: bool) -> None:
        self.burst_seconds = burst_seconds
        self.per_minute = 0.0
        self.rate = 0.0
        self.capacity = 1.0
        self.set_limit(per_minute)
        self.level = self.capacity if full else 0.0
        self.updated = now

    def set_limit(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * self.burst_seconds)

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
            self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` can be paid; an amount above the capacity is paid from a
        full bucket (which then goes into debt)."""
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate


class RateLimiter:
    """Paces requests so that neither the request nor the token budget is exceeded."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        headroom: float = 0.98,
        burst_seconds: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self.clock = clock or Clock()
        self.headroom = headroom
        self.burst_seconds = burst_seconds
        self.configured = {"requests": rpm, "tokens": tpm}
        now = self.clock.now()
        self.requests = Budget(rpm, burst_seconds, now, full=True) if rpm else None
        self.tokens = Budget(tpm, burst_seconds, now, full=True) if tpm else None
        self.learned = False
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        """Whether any budget is known (from the settings or learned)."""
        return self.requests is not None or self.tokens is not None

    @property
    def needs_token_estimates(self) -> bool:
        """Whether a tokens budget is known (only then are prompts worth counting)."""
        return self.tokens is not None

    async def acquire(self, tokens: int = 0) -> int:
        """Wait until one request of about ``tokens`` tokens fits both budgets, and pay for it.
        Returns the tokens charged (0 when no tokens budget is known yet)."""
        if self.requests is None and self.tokens is None:
            return 0
        async with self._lock:  # FIFO: a large request is not starved by small ones
            while True:
                now = self.clock.now()
                wait = 0.0
                for budget, amount in ((self.requests, 1), (self.tokens, tokens)):
                    if budget is not None:
                        budget.refill(now)
                        wait = max(wait, budget.wait_for(amount))
                if wait <= 0:
                    if self.requests is not None:
                        self.requests.level -= 1
                    if self.tokens is not None:
                        self.tokens.level -= tokens
                        return tokens
                    return 0
                await self.clock.sleep(wait)

    def settle(self, charged: int, actual: int) -> None:
        """Correct the tokens budget once the response reports its real usage."""
        if self.tokens is not None and actual > 0:
            self.tokens.refill(self.clock.now())
            self.tokens.level = min(self.tokens.capacity, self.tokens.level + charged - actual)

    def observe(self, info: LimitHeaders | None, *, refused: bool = False) -> None:
        """Learn limits from a response's headers; an exhausted budget empties our bucket.

        ``refused``: the response was a 429, sent at once, so its ``remaining`` counts are the
        server's budget now: ours is lowered to them."""
        if info is None:
            return
        now = self.clock.now()
        self.requests = self._learn("requests", self.requests, info.limit_requests, now)
        self.tokens = self._learn("tokens", self.tokens, info.limit_tokens, now)
        pairs = ((self.requests, info.remaining_requests), (self.tokens, info.remaining_tokens))
        for budget, remaining in pairs:
            if budget is not None and remaining is not None and (refused or remaining <= 0):
                budget.refill(now)
                budget.level = min(budget.level, float(max(0, remaining)))

    def _learn(self, name: str, budget: Budget | None, limit: int | None, now: float) -> Budget | None:
        if not limit or limit <= 0:
            return budget
        target = limit * self.headroom
        configured = self.configured[name]
        if configured:
            target = min(target, configured)
        if budget is None:
            self.learned = True
            return Budget(target, self.burst_seconds, now, full=False)
        if abs(budget.per_minute - target) > 1e-9:
            budget.refill(now)
            budget.set_limit(target)
            budget.level = min(budget.level, budget.capacity)
        return budget
