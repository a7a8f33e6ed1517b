"""A polite, caching OAuth client for Reddit's API.

Every successful download is kept in the run store (keyed on its URL), so a rerun reads the store
and sends nothing, and needs no credentials. A live request carries a bearer token
(:mod:`~synthtune.plugins.reddit.auth`) and Reddit's User-Agent, and waits as Reddit's rate-limit
headers say (:mod:`~synthtune.plugins.reddit.ratelimit`). A 429 is waited out (``Retry-After`` or
the reset header), 5xx and network errors are retried with backoff, both a bounded number of
times. A 401 gets one new token and one retry (prawcore does the same); a second 401 means the
access was revoked and ends the run with one line, as does a 403.
"""

from __future__ import annotations

import http.client
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synthtune.plugins.reddit.auth import Credentials, TokenSource, user_agent
from synthtune.plugins.reddit.messages import forbidden, redirected, token_revoked
from synthtune.plugins.reddit.ratelimit import RESET_MARGIN, RateBudget, header_number
from synthtune.plugins.reddit.settings import RedditSourceSettings
from synthtune.plugins.reddit.transport import MAX_BODY_BYTES, Fetch, HttpReply, RedditError, urllib_fetch

RETRY_STATUSES = {429, 500, 502, 503, 504, 520, 522}  # prawcore's list, plus 429


@dataclass
class RedditClient:
    """GETs JSON from Reddit's API through the run store's cache, within Reddit's rate limits.

    ``cache_get``/``cache_put`` are the run context's key-value cache. ``credentials`` default
    to the environment's, read at the first live request. ``fetch``, ``sleep`` and ``clock``
    are replaceable so the waiting logic can be tested without waiting.
    """

    settings: RedditSourceSettings
    cache_get: Callable[[str], str | None]
    cache_put: Callable[[str, str], None]
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("synthtune"))
    credentials: Credentials | None = None
    fetch: Fetch = urllib_fetch
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    budget: RateBudget | None = None
    requests: int = 0
    cache_hits: int = 0
    waited: float = 0.0
    _tokens: TokenSource | None = None

    def __post_init__(self) -> None:
        if self.budget is None:
            self.budget = RateBudget(window=self.settings.rate_window, max_pace=self.settings.max_pace)

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

    @property
    def tokens(self) -> TokenSource:
        """The bearer-token source, made at the first live request (so a rerun served from the
        run store needs no credentials)."""
        if self._tokens is None:
            credentials = self.credentials or Credentials.from_env()
            agent = user_agent(self.settings)
            self._tokens = TokenSource(self.settings, credentials, self._send, agent, self.clock)
        return self._tokens

    # -- the live request ---------------------------------------------------------------------

    def _download(self, url: str) -> str:
        tokens = self.tokens
        renewed = False
        while True:
            token = tokens.current()
            headers = {
                "User-Agent": tokens.agent,
                "Authorization": f"bearer {token}",
                "Accept": "application/json",
            }
            reply = self._send("GET", url, headers, None)
            if reply.status == 200:
                if len(reply.body) > MAX_BODY_BYTES:
                    raise RedditError(f"reddit: {url} answered more than {MAX_BODY_BYTES} bytes")
                return reply.body.decode("utf-8", errors="replace")
            if reply.status == 401:
                if renewed:
                    raise RedditError(token_revoked(url))
                self.log.info("reddit: the access token was refused (HTTP 401); fetching a new one")
                tokens.invalidate()
                renewed = True
                continue
            if reply.status == 403:
                raise RedditError(forbidden(url))
            if reply.status in (301, 302, 303, 307, 308):
                raise RedditError(redirected(url, reply.status, reply.headers.get("location", "")))
            raise RedditError(f"reddit: GET {url} returned HTTP {reply.status}{_hint(reply.status)}")

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> HttpReply:
        """One request, paced by the budget, retried on 429, 5xx and network errors; any other
        answer is returned as it is."""
        assert self.budget is not None
        attempt = 0
        while True:
            self._pace()
            self.requests += 1
            try:
                reply = self.fetch(method, url, headers, body, self.settings.timeout)
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
            if reply.status not in RETRY_STATUSES:
                return reply
            if attempt >= self.settings.max_retries:
                raise RedditError(
                    f"reddit: {method} {url} still returned HTTP {reply.status} after {attempt + 1} "
                    "attempts; try again later"
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
            told = [
                v
                for v in (
                    header_number(reply.headers, "retry-after"),
                    header_number(reply.headers, "x-ratelimit-reset"),
                )
                if v is not None
            ]
            if told:
                return max(told) + RESET_MARGIN
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        return min(60.0, 2.0 ** (attempt - 1)) * random.uniform(1.0, 1.25)

    def _pace(self) -> None:
        """Stay inside the budget Reddit's headers advertise."""
        assert self.budget is not None
        delay = self.budget.wait_before_next(self.clock())
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
    if status == 404:
        return " (no such subreddit or post, or it was banned)"
    return ""
