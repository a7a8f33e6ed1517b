"""Adaptive concurrency: AIMD on the number of requests in flight.

The limit starts at the configured concurrency. A burst of 429s halves it (once per window, so
one burst counts once, however many requests it hit); every success adds ``1 / limit``, so the
limit grows back by about one slot per round trip, up to the configured maximum.
"""

from __future__ import annotations

import asyncio
from collections import deque

from synthtune.plugins.openai.clock import Clock


class AdaptiveConcurrency:
    """A semaphore whose size moves between ``minimum`` and ``maximum``."""

    def __init__(
        self,
        maximum: int,
        minimum: int = 1,
        *,
        decrease: float = 0.5,
        window: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self.decrease = decrease
        self.window = window
        self.clock = clock or Clock()
        self.limit = float(maximum)
        self.in_flight = 0
        self.shrinks = 0
        self._last_decrease = float("-inf")
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Wait for a free slot and take it."""
        if self.in_flight < int(self.limit) and not self._waiters:
            self.in_flight += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        """Give a slot back."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < int(self.limit):
            future = self._waiters.popleft()
            if not future.done():
                self.in_flight += 1
                future.set_result(None)

    def on_success(self) -> None:
        """A request succeeded: grow by ``1 / limit``."""
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._wake()

    def on_rate_limited(self, latency: float | None = None) -> bool:
        """A request got a 429: shrink, unless we already shrank within the window (the
        window is at least one round trip, so one burst counts once). Returns whether it shrank."""
        now = self.clock.now()
        if now - self._last_decrease < max(self.window, latency or 0.0):
            return False
        self._last_decrease = now
        new = max(float(self.minimum), self.limit * self.decrease)
        if new >= self.limit:
            return False
        self.limit = new
        self.shrinks += 1
        return True
