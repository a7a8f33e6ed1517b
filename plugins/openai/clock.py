"""Time for the generation engine, injectable so tests can check waits without waiting."""

from __future__ import annotations

import asyncio
import time


class Clock:
    """Monotonic time and async sleep. Tests pass a subclass that records sleeps and moves
    time forward instead of waiting."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (returns at once for zero or less)."""
        await asyncio.sleep(max(0.0, seconds))
