"""A polite, caching HTTP client for Reddit's public JSON endpoints.

Every successful download is kept in the run store (keyed on its URL), so a rerun reads the store
and sends nothing. Live requests are spaced at least ``min_interval`` apart and, when Reddit's
``x-ratelimit-remaining``/``x-ratelimit-reset`` headers say the budget is running out, spread over
what is left of the window. A 429 is waited out (``Retry-After`` or the reset header), 5xx and
network errors are retried with backoff, both a bounded number of times.

Synchronous on purpose: a source is pulled one record at a time and Reddit allows about one
request every two seconds, so there is nothing for concurrency to win.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from synthtune.core.errors import SynthtuneError
from synthtune.plugins.reddit.settings import RedditSourceSettings

MAX_BODY_BYTES = 32 * 1024 * 1024  # a thread's JSON is far smaller; this bounds a hostile reply
LOW_BUDGET = 10  # below this many remaining requests, spread them over the rest of the window
RESET_MARGIN = 0.5  # Reddit rounds x-ratelimit-reset to whole seconds
RETRY_STATUSES = {429, 500, 502, 503, 504}


class RedditError(SynthtuneError):
    """Reddit refused or kept failing; the message says what to do."""


@dataclass
class HttpReply:
    status: int
    body: bytes
    headers: Message


@dataclass
class RateBudget:
    """What Reddit's last answer said about the request budget."""

    remaining: float | None = None
    reset: float | None = None  # seconds to the end of the window, as of ``seen_at``
    seen_at: float = 0.0

    def update(self, headers: Message, now: float) -> None:
        remaining, reset = _number(headers, "x-ratelimit-remaining"), _number(headers, "x-ratelimit-reset")
        if remaining is not None and reset is not None:
            self.remaining, self.reset, self.seen_at = remaining, reset, now

    def wait_before_next(self, now: float) -> float:
        """Seconds to wait so the next request stays inside the budget."""
        if self.remaining is None or self.reset is None:
            return 0.0
        elapsed = now - self.seen_at
        if self.remaining < 1:  # spent: wait for the window to reset
            return max(0.0, self.reset + RESET_MARGIN - elapsed)
        if self.remaining < LOW_BUDGET:  # nearly spent: spread what is left over the window
            return max(0.0, self.reset / self.remaining - elapsed)
        return 0.0


def _number(headers: Message, name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        return None


Fetch = Callable[[str, dict[str, str], float], HttpReply]


def urllib_fetch(url: str, headers: dict[str, str], timeout: float) -> HttpReply:
    """GET ``url`` with urllib; HTTP error statuses are returned, not raised."""
    request = urllib.request.Request(url, headers=headers, method="GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_BODY_BYTES + 1)
            return HttpReply(response.status, body, response.headers)
    except urllib.error.HTTPError as error:
        body = error.read(64 * 1024) if error.fp is not None else b""
        return HttpReply(error.code, body, error.headers)


@dataclass
class RedditClient:
    """GETs JSON from Reddit through the run store's cache, within Reddit's rate limits.

    ``cache_get``/``cache_put`` are the run context's key-value cache; ``fetch``, ``sleep`` and
    ``clock`` are replaceable so the waiting logic can be tested without waiting.
    """

    settings: RedditSourceSettings
    cache_get: Callable[[str], str | None]
    cache_put: Callable[[str, str], None]
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("synthtune"))
    fetch: Fetch = urllib_fetch
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    budget: RateBudget = field(default_factory=RateBudget)
    requests: int = 0
    cache_hits: int = 0
    waited: float = 0.0
    _last_request: float | None = None

    def url(self, path: str) -> str:
        return f"{self.settings.base_url}{path}"

    def get_json(self, path: str) -> Any:
        """The JSON document at ``path`` (which includes its query), from the run store when it
        was downloaded before, else from Reddit (then stored)."""
        url = self.url(path)
        if not self.settings.refresh:
            cached = self.cache_get(url)
            if cached is not None:
                try:
                    document = json.loads(cached)
                except json.JSONDecodeError:
                    document = None  # a damaged entry: download it again
                if document is not None:
                    self.cache_hits += 1
                    return document
        text = self._download(url)
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            raise RedditError(f"reddit: {url} did not return JSON (got {text[:60]!r}...)") from None
        self.cache_put(url, text)
        return document

    # -- the live request ---------------------------------------------------------------------

    def _download(self, url: str) -> str:
        headers = {"User-Agent": self.settings.user_agent, "Accept": "application/json"}
        attempt = 0
        while True:
            self._pace()
            self._last_request = self.clock()
            self.requests += 1
            try:
                reply = self.fetch(url, headers, self.settings.timeout)
            except (OSError, http.client.HTTPException) as error:  # URLError, timeouts, resets
                reason = getattr(error, "reason", error)
                if attempt >= self.settings.max_retries:
                    raise RedditError(
                        f"reddit: cannot reach {url} after {attempt + 1} attempt(s): {reason}"
                    ) from None
                attempt += 1
                self._wait(self._backoff(attempt), f"cannot reach {url} ({reason})", attempt)
                continue
            self.budget.update(reply.headers, self.clock())
            if reply.status == 200:
                if len(reply.body) > MAX_BODY_BYTES:
                    raise RedditError(f"reddit: {url} answered more than {MAX_BODY_BYTES} bytes")
                return reply.body.decode("utf-8", errors="replace")
            if reply.status not in RETRY_STATUSES:
                raise RedditError(f"reddit: GET {url} returned HTTP {reply.status}{_hint(reply.status)}")
            if attempt >= self.settings.max_retries:
                raise RedditError(
                    f"reddit: GET {url} still returned HTTP {reply.status} after {attempt + 1} attempts; "
                    "try again later or raise source.min_interval"
                )
            attempt += 1
            delay = self._retry_delay(reply, attempt)
            if delay > self.settings.max_wait:
                raise RedditError(
                    f"reddit: asked to wait {delay:.0f}s "
                    f"(over source.max_wait={self.settings.max_wait:.0f}s); try again later"
                )
            self._wait(delay, f"GET {url} returned HTTP {reply.status}", attempt)

    def _retry_delay(self, reply: HttpReply, attempt: int) -> float:
        """How long to wait after a retryable answer: what Reddit says, else exponential backoff."""
        if reply.status == 429:
            retry_after = _number(reply.headers, "retry-after")
            reset = _number(reply.headers, "x-ratelimit-reset")
            told = [v for v in (retry_after, reset) if v is not None]
            if told:
                return max(told) + RESET_MARGIN
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        base = max(self.settings.min_interval, 1.0)
        return min(60.0, base * 2 ** (attempt - 1)) * random.uniform(1.0, 1.25)

    def _pace(self) -> None:
        """Keep ``min_interval`` between requests and stay inside the advertised budget."""
        now = self.clock()
        delay = self.budget.wait_before_next(now)
        if self._last_request is not None:
            delay = max(delay, self.settings.min_interval - (now - self._last_request))
        if delay > self.settings.max_wait:
            raise RedditError(
                f"reddit: rate limit budget spent; the window resets in {delay:.0f}s "
                f"(over source.max_wait={self.settings.max_wait:.0f}s); try again later"
            )
        if delay > 0:
            self._wait(delay, None)

    def _wait(self, seconds: float, why: str | None, attempt: int = 0) -> None:
        if why is not None:  # a retry: one status line each, so a long wait is never silent
            self.log.warning(
                "reddit: %s; retry %d of %d in %.1fs", why, attempt, self.settings.max_retries, seconds
            )
        self.waited += seconds
        self.sleep(seconds)


def _hint(status: int) -> str:
    if status == 403:
        return " (private or quarantined subreddit, or a User-Agent Reddit refuses)"
    if status == 404:
        return " (no such subreddit or post, or it was banned)"
    return ""
