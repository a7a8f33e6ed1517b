"""Pacing requests by Reddit's rate-limit headers.

Reddit sends three headers on API answers (its API rules, github.com/reddit-archive/reddit/wiki/API):
``X-Ratelimit-Used`` (requests used in this period), ``X-Ratelimit-Remaining`` (requests left)
and ``X-Ratelimit-Reset`` (seconds to the end of the period); the period is 10 minutes
(announced with the headers on r/redditdev in 2014; PRAW's ``window_size`` default, 600).

The pacing is prawcore's (``prawcore/rate_limit.py``, ``RateLimiter.update``): a spent budget
waits for the reset; otherwise a request may go at once as long as the budget used so far is
no more than an even spread over the window would have used by now, and when it is ahead of
that pace it waits the difference, at most ``max_pace`` seconds at a time. So a short run goes
at full speed and a long one settles at the rate the budget allows, never on a fixed sleep. An
answer without the headers counts as one request against the last known budget (prawcore does
the same).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message

RESET_MARGIN = 0.5  # Reddit rounds X-Ratelimit-Reset to whole seconds


def header_number(headers: Message, name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


@dataclass
class RateBudget:
    """What Reddit's last answer said about the request budget, and the pause it implies."""

    window: float = 600.0
    max_pace: float = 10.0
    remaining: float | None = None
    used: float | None = None
    reset: float | None = None  # seconds to the end of the window, as of ``seen_at``
    seen_at: float = 0.0

    def update(self, headers: Message, now: float) -> None:
        remaining = header_number(headers, "x-ratelimit-remaining")
        reset = header_number(headers, "x-ratelimit-reset")
        if remaining is None or reset is None:
            if self.remaining is not None:
                self.remaining -= 1
                self.used = None if self.used is None else self.used + 1
            return
        self.remaining, self.reset, self.seen_at = remaining, reset, now
        self.used = header_number(headers, "x-ratelimit-used")

    def wait_before_next(self, now: float) -> float:
        """Seconds to wait so the next request stays inside the budget."""
        if self.remaining is None or self.reset is None:
            return 0.0
        elapsed = now - self.seen_at
        if self.remaining < 1:  # spent: wait for the window to reset
            return max(0.0, self.reset + RESET_MARGIN - elapsed)
        if not self.used:
            return 0.0
        # How far ahead of an even spread of the budget over the window the requests so far are.
        budget = self.remaining + self.used
        on_pace_left = self.window - self.window / budget * self.used
        ahead = self.reset - on_pace_left
        return max(0.0, min(self.reset, ahead, self.max_pace) - elapsed)
