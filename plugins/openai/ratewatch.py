"""How long the run has been held up by rate limits, a cap on it, and a line saying so.

Per-request limits do not bound a 429 storm: with every answer a 429, each request waits and
retries, the circuit breaker's pause doubles toward a minute, and a run of 20 records was still
going after 15 minutes with nothing on the screen. :class:`RateLimitWatch` counts, for the
whole run, the time from the first 429 after an answer to the next answer ("stalled"):

- a stall longer than ``max_stall`` seconds, or stalls adding up to more than ``max_total``
  seconds, stop the run with one line quoting the server (the answers kept so far stay in the
  run store; a rerun goes on from there);
- once stalled (or about to wait) for ``notice_every`` seconds, a ``rate limited: waiting Ns
  (server says ...)`` line goes to the log every ``notice_every`` seconds, on a terminal or not.

A wait that would end past either cap stops the run at once rather than sleeping first.
"""

from __future__ import annotations

from collections.abc import Callable

from synthtune.core.errors import GenerationError
from synthtune.plugins.openai.clock import Clock


class RateLimitWatch:
    def __init__(
        self,
        *,
        max_stall: float,
        max_total: float,
        notice_every: float,
        clock: Clock,
        notify: Callable[[str], None],
    ) -> None:
        self.max_stall = max_stall
        self.max_total = max_total
        self.notice_every = notice_every
        self.clock = clock
        self.notify = notify
        self.stalled_since: float | None = None
        self.total = 0.0  # seconds stalled in earlier stalls
        self.resume_at = 0.0  # when the last planned wait ends
        self.server_says = ""
        self.last_notice: float | None = None

    @property
    def stalled(self) -> bool:
        return self.stalled_since is not None

    def on_answer(self) -> None:
        """Any answer that is not a 429 ends the stall."""
        if self.stalled_since is not None:
            self.total += self.clock.now() - self.stalled_since
            self.stalled_since = None

    def on_rate_limited(self, wait: float, message: str | None, retry_after: float | None) -> None:
        """A 429 arrived and the request is about to wait ``wait`` seconds (its own backoff or
        the breaker's pause, whichever is longer). Raises GenerationError when that wait would
        end past a cap."""
        now = self.clock.now()
        if self.stalled_since is None:
            self.stalled_since = now
        said = (message or "429").strip()
        if retry_after is not None:
            said += f"; retry after {retry_after:g}s"
        self.server_says = said
        stalled = now - self.stalled_since
        if stalled + wait > self.max_stall:
            raise GenerationError(
                f"rate limited: no answer for {stalled:.0f}s and the next try is {wait:.0f}s away, "
                f"past generate.rate_limit_max_stall ({self.max_stall:g}s); server says: {said}. "
                "Answers so far are kept: rerun later, or lower generate.concurrency / generate.rpm"
            )
        if self.total + stalled + wait > self.max_total:
            raise GenerationError(
                f"rate limited for {self.total + stalled:.0f}s in all, past "
                f"generate.rate_limit_max_wait ({self.max_total:g}s); server says: {said}. "
                "Answers so far are kept: rerun later, or lower generate.concurrency / generate.rpm"
            )
        self.resume_at = max(self.resume_at, now + wait)
        self.maybe_notice()

    def maybe_notice(self) -> None:
        """Say we are waiting, at most once every ``notice_every`` seconds, while stalled for
        that long already or about to wait that long (a lone 429 among answers says nothing)."""
        if self.stalled_since is None:
            return
        now = self.clock.now()
        waiting = max(0.0, self.resume_at - now)
        if now - self.stalled_since < self.notice_every and waiting < self.notice_every:
            return
        if self.last_notice is not None and now - self.last_notice < self.notice_every:
            return
        self.last_notice = now
        self.notify(
            f"rate limited: waiting {waiting:.0f}s (server says: {self.server_says}); "
            f"no answer for {now - self.stalled_since:.0f}s, giving up after {self.max_stall:g}s"
        )
