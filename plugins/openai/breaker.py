"""A circuit breaker that pauses every request while 429s persist, instead of hammering.

Closed: requests flow. When the last ``threshold`` answers were all 429s and they span at least
``persist`` seconds (a single burst of refusals from requests sent together does not count as
persisting), the breaker opens: every request waits ``cooldown`` seconds (at least the longest
Retry-After seen). Then it is half-open: one probe request goes; a success closes the breaker, a
429 opens it again with the cooldown doubled (up to ``max_cooldown``).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from synthtune.plugins.openai.clock import Clock

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self,
        *,
        threshold: int = 16,
        persist: float = 1.0,
        cooldown: float = 1.0,
        max_cooldown: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        self.threshold = threshold
        self.persist = persist
        self.base_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.clock = clock or Clock()
        self.state: State = "closed"
        self.opened = 0  # how many times it opened
        self.cooldown = cooldown
        self.open_until = 0.0
        self._streak = 0
        self._streak_started = 0.0
        self._probe_out = False
        self._changed: asyncio.Event | None = None

    async def wait(self) -> None:
        """Return when a request may be sent (at once while closed)."""
        while self.state != "closed":
            if self.state == "open":
                delay = self.open_until - self.clock.now()
                if delay > 0:
                    await self.clock.sleep(delay)
                    continue
                self.state = "half_open"
                self._probe_out = False
            if not self._probe_out:
                self._probe_out = True  # this caller is the probe
                return
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _open(self, retry_after: float | None) -> None:
        self.state = "open"
        self.opened += 1
        self.open_until = self.clock.now() + max(self.cooldown, retry_after or 0.0)
        self._notify()

    def on_success(self) -> None:
        """An answer that was not a 429: the streak ends; a half-open breaker closes."""
        self._streak = 0
        if self.state != "closed":
            self.state = "closed"
            self.cooldown = self.base_cooldown
            self._probe_out = False
            self._notify()

    def on_other_failure(self) -> None:
        """A failure that says nothing about rate limits (5xx, timeout): lets a new probe go."""
        if self.state == "half_open" and self._probe_out:
            self._probe_out = False
            self._notify()

    def on_rate_limited(self, retry_after: float | None = None) -> bool:
        """A 429 arrived. Returns whether this opened the breaker."""
        now = self.clock.now()
        if self.state == "half_open":
            self.cooldown = min(self.max_cooldown, self.cooldown * 2)
            self._open(retry_after)
            return True
        if self.state == "open":
            return False
        if self._streak == 0:
            self._streak_started = now
        self._streak += 1
        if self._streak >= self.threshold and now - self._streak_started >= self.persist:
            self._streak = 0
            self._open(retry_after)
            return True
        return False
