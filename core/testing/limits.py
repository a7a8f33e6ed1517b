"""Server-side rate limits and fault injection for :class:`~synthtune.core.testing.FakeOpenAI`.

``ServerLimits`` enforces requests-per-minute and tokens-per-minute budgets the way a provider
does: token buckets refilled continuously, holding at most ``burst_seconds`` worth of budget
(OpenAI quantises its per-minute limits to shorter windows too). Every answer carries
``x-ratelimit-*`` headers; a refused request gets a 429 with ``retry-after-ms``/``retry-after``.

``Faults`` decides, per request body and attempt, whether to answer with an injected 5xx, a 429
with ``Retry-After``, a hang (the client times out), a malformed body, a dropped connection (no
answer at all) or an HTML page with status 200 (a web server that is not an OpenAI-compatible
one). The decision is a seeded hash of (seed, body, attempt), so a run with any concurrency and
any ordering meets the same faults.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Fault = Literal["server_error", "rate_limit", "timeout", "malformed", "reset", "html"]
FAULTS: tuple[Fault, ...] = ("server_error", "rate_limit", "timeout", "malformed", "reset", "html")


@dataclass
class Faults:
    """Fault rates (probabilities per attempt, summing to at most 1) and their parameters."""

    server_error: float = 0.0
    rate_limit: float = 0.0
    timeout: float = 0.0
    malformed: float = 0.0
    reset: float = 0.0  # the connection is closed without an answer
    html: float = 0.0  # 200 with an HTML page instead of JSON
    retry_after: float = 0.05  # seconds, sent with injected 429s
    hang: float = 30.0  # seconds an injected timeout holds the request (the client gives up first)
    seed: int = 0

    def pick(self, digest: str, attempt: int) -> Fault | None:
        """The fault for attempt number ``attempt`` (0-based) of the body with ``digest``."""
        roll = hashlib.sha256(f"{self.seed}:{digest}:{attempt}".encode()).digest()
        x = int.from_bytes(roll[:8], "big") / 2**64
        for name in FAULTS:
            rate = getattr(self, name)
            if x < rate:
                return name
            x -= rate
        return None


def format_duration(seconds: float) -> str:
    """``0.25`` -> ``250ms``, ``1.5`` -> ``1.5s``, ``75`` -> ``1m15s`` (OpenAI's header style)."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


class _Bucket:
    def __init__(self, per_minute: float, burst_seconds: float, now: float) -> None:
        self.limit = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken (0 when it can now). A request larger than the
        whole bucket passes when the bucket is full, leaving it in debt."""
        need = min(amount, self.capacity)
        return 0.0 if self.level >= need else (need - self.level) / self.rate

    def reset_in(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


class ServerLimits:
    """Requests- and tokens-per-minute budgets of a fake server."""

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        burst_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        now = clock()
        self.clock = clock
        self.requests = _Bucket(rpm, burst_seconds, now) if rpm else None
        self.tokens = _Bucket(tpm, burst_seconds, now) if tpm else None

    def admit(self, tokens: int) -> tuple[bool, dict[str, str]]:
        """Charge one request of ``tokens`` tokens if both budgets allow it now.

        Returns whether it was admitted and the headers to send (rate-limit state, plus
        ``retry-after-ms``/``retry-after`` when refused)."""
        now = self.clock()
        buckets = [(b, n) for b, n in ((self.requests, 1), (self.tokens, tokens)) if b is not None]
        for bucket, _ in buckets:
            bucket.refill(now)
        wait = max((bucket.wait_for(n) for bucket, n in buckets), default=0.0)
        if wait <= 0:
            for bucket, n in buckets:
                bucket.level -= n
        headers = self.headers()
        if wait > 0:
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
            headers["retry-after"] = str(max(1, math.ceil(wait)))
        return wait <= 0, headers

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for name, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            if bucket is None:
                continue
            headers[f"x-ratelimit-limit-{name}"] = str(int(bucket.limit))
            headers[f"x-ratelimit-remaining-{name}"] = str(max(0, math.floor(bucket.level)))
            headers[f"x-ratelimit-reset-{name}"] = format_duration(bucket.reset_in())
        return headers
