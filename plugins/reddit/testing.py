"""A fake Reddit for tests: real HTTP on 127.0.0.1, with Reddit's OAuth and rate limits.

:class:`FakeReddit` plays both of Reddit's hosts on one port:

- the token endpoint, ``POST /api/v1/access_token`` (www.reddit.com): HTTP Basic credentials of
  the app and ``grant_type=client_credentials`` (or ``refresh_token`` with the refresh token it
  was given) get ``{"access_token", "token_type": "bearer", "expires_in", "scope"}``; wrong app
  credentials get 401, a wrong or revoked refresh token 400 ``{"error": 400}`` (the answers
  prawcore's recorded cassettes show);
- the API (oauth.reddit.com): ``/r/{sub}/top`` (a ``Listing`` of ``t3`` posts, ``page_size`` at a
  time with an ``after`` cursor) and ``/comments/{id}`` (the post, then its ``t1`` comments with
  nested ``replies`` and ``more`` stubs). Requests need ``Authorization: bearer <token>`` with a
  live token (else 401 with ``WWW-Authenticate: Bearer realm="reddit", error="invalid_token"``);
  without any Authorization they get 403, as logged-out requests have since May 2026. The old
  logged-out paths (``/r/{sub}/top/.json``, ``{permalink}.json``) are served under the same rules.

Every request must carry a User-Agent of Reddit's form ``<platform>:<app ID>:<version> (by
/u/<username>)``; any other (none, Python's default, a browser's) gets a 429, Reddit's treatment of
default agents. Every API answer carries ``X-Ratelimit-Used/Remaining/Reset`` from a real window
(``quota`` requests per ``window`` seconds; Reddit's is 1,000 per 600 s, the default here is larger
so tests paced by the headers do not wait); past the quota the answer is 429 until the window
resets. :meth:`FakeReddit.throttle` scripts 429s, :meth:`FakeReddit.forbid_api` 403s, and
:meth:`FakeReddit.revoke_tokens` and :meth:`FakeReddit.revoke_client` revoke access. Every
request is logged in :attr:`FakeReddit.requests`. Text is HTML-escaped unless ``raw_json=1`` is asked.

Plugin authors can reuse it with their own threads::

    from synthtune.plugins.reddit.testing import FakeComment, FakePost, FakeReddit

    with FakeReddit([FakePost("p1", "[WP] A prompt", [FakeComment("c1", "A story ...")])]) as reddit:
        ...  # source.base_url and source.auth_url = reddit.base_url; REDDIT_CLIENT_ID = reddit.client_id ...

With no posts it serves :func:`synthtune.plugins.reddit.sample_threads.sample_posts`.
"""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from synthtune.core.testing.server import LocalServer
from synthtune.plugins.reddit.fake_things import FakeComment, FakePost, listing, post_data, thread_document

__all__ = ["FakeComment", "FakePost", "FakeReddit", "FakeRedditRequest"]

# Written from Reddit's API rules, independently of the client's own check.
AGENT_FORM = re.compile(r"^\w[\w.-]*:[\w.-]+:v?\d[\w.+-]*\s\(by /u/[\w-]{3,20}\)$")
INVALID_TOKEN = 'Bearer realm="reddit", error="invalid_token"'
BLOCKED_PAGE = "<!doctype html><title>Blocked</title><p>You've been blocked by network security.</p>"


@dataclass
class FakeRedditRequest:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, str]
    user_agent: str
    token: str | None  # the bearer token sent, if any
    status: int
    at: float  # time.monotonic() on arrival


class FakeReddit(LocalServer):
    """A fake Reddit in a background thread; use as a context manager or start()/stop()."""

    def __init__(
        self,
        posts: list[FakePost] | None = None,
        *,
        page_size: int = 2,
        quota: int = 60_000,
        window: float = 600,
        client_id: str = "fake-app-id",
        client_secret: str = "fake-app-secret",
        refresh_token: str | None = None,
        token_lifetime: int = 3600,
    ) -> None:
        if posts is None:
            from synthtune.plugins.reddit.sample_threads import sample_posts

            posts = sample_posts()
        super().__init__()
        self.posts = posts
        self.page_size = page_size
        self.quota = quota
        self.window = window
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.token_lifetime = token_lifetime
        self.requests: list[FakeRedditRequest] = []
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}  # token -> expiry (monotonic)
        self._client_revoked = False
        self._forbidden = False
        self._throttle: list[dict[str, str]] = []
        self._window_start = time.monotonic()
        self._used = 0
        self._lock = threading.Lock()

    def __enter__(self) -> FakeReddit:
        self.start()
        return self

    def env(self, username: str = "synthtune_tests") -> dict[str, str]:
        """The environment a client needs to use this fake: the app's credentials and a user."""
        env = {
            "REDDIT_CLIENT_ID": self.client_id,
            "REDDIT_CLIENT_SECRET": self.client_secret,
            "REDDIT_USERNAME": username,
        }
        if self.refresh_token:
            env["REDDIT_REFRESH_TOKEN"] = self.refresh_token
        return env

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/access_token", self._access_token)
        for path in ("/r/{sub}/top", "/r/{sub}/top/", "/r/{sub}/top/.json", "/r/{sub}/top.json"):
            app.router.add_get(path, self._top)
        for path in (
            "/comments/{post}",
            "/comments/{post}/",
            "/r/{sub}/comments/{post}/{slug}/.json",
            "/r/{sub}/comments/{post}/{slug}.json",
        ):
            app.router.add_get(path, self._comments)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    # -- scripting and counters -------------------------------------------------------------------

    def throttle(self, times: int = 1, reset: int = 1, retry_after: int | None = None) -> None:
        """Answer the next ``times`` API requests with a 429, as Reddit does when the budget is
        spent: ``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset: reset``."""
        headers = {
            "x-ratelimit-used": str(self.quota),
            "x-ratelimit-remaining": "0.0",
            "x-ratelimit-reset": str(reset),
        }
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        with self._lock:
            self._throttle.extend(dict(headers) for _ in range(times))

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (401); the app may fetch new ones."""
        with self._lock:
            self._tokens.clear()

    def forbid_api(self) -> None:
        """Answer every API request with 403 from now on, as Reddit does for an app it has not
        approved or a client it blocks."""
        with self._lock:
            self._forbidden = True

    def revoke_client(self) -> None:
        """The app loses its access: its tokens stop working and new ones are refused."""
        with self._lock:
            self._tokens.clear()
            self._client_revoked = True

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def api_requests(self) -> list[FakeRedditRequest]:
        """The requests to the API (everything but the token endpoint)."""
        return [r for r in self.requests if r.path != "/api/v1/access_token"]

    def paths(self, status: int | None = None) -> list[str]:
        """API paths requested so far (only those answered with ``status`` when given)."""
        return [r.path for r in self.api_requests() if status is None or r.status == status]

    # -- gates ------------------------------------------------------------------------------------

    def _log(self, request: web.Request, token: str | None, status: int) -> None:
        self.requests.append(
            FakeRedditRequest(
                request.method,
                request.path,
                dict(request.query),
                request.headers.get("User-Agent", ""),
                token,
                status,
                time.monotonic(),
            )
        )

    def _bad_agent(self, request: web.Request) -> bool:
        return not AGENT_FORM.match(request.headers.get("User-Agent", ""))

    def _window(self) -> tuple[int, float]:
        """(requests used, seconds to reset) of the current window, rolling it over if due.
        Called with the lock held."""
        now = time.monotonic()
        if now - self._window_start >= self.window:
            self._window_start, self._used = now, 0
        return self._used, max(0.0, self.window - (now - self._window_start))

    def _budget_headers(self, used: int, reset: float) -> dict[str, str]:
        return {
            "x-ratelimit-used": str(used),
            "x-ratelimit-remaining": f"{max(0, self.quota - used):.1f}",
            "x-ratelimit-reset": str(int(reset + 0.999)),
        }

    def _gate(self, request: web.Request) -> tuple[web.Response | None, dict[str, str]]:
        """Check the agent, the token and the budget of an API request. Returns a refusal, or
        None and the rate-limit headers to send with the answer."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        sent = token.strip() if scheme.lower() == "bearer" else None
        with self._lock:
            status, headers, body = 200, {}, ""
            if self._bad_agent(request):
                status, headers = (
                    429,
                    {"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": str(int(self.window))},
                )
            elif not request.headers.get("Authorization") or self._forbidden:
                status, body = 403, BLOCKED_PAGE
            elif sent is None or self._tokens.get(sent, 0.0) <= time.monotonic():
                status, headers = 401, {"www-authenticate": INVALID_TOKEN}
            elif self._throttle:
                status, headers = 429, self._throttle.pop(0)
            else:
                used, reset = self._window()
                if used >= self.quota:
                    status = 429
                else:
                    self._used = used = used + 1
                headers = self._budget_headers(used, reset)
            self._log(request, sent, status)
        if status == 200:
            return None, headers
        if status == 403:
            return web.Response(status=403, text=body, content_type="text/html"), headers
        message = {401: "Unauthorized", 429: "Too Many Requests"}[status]
        return web.json_response(
            {"message": message, "error": status}, status=status, headers=headers
        ), headers

    # -- handlers ---------------------------------------------------------------------------------

    async def _access_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        try:
            pair = base64.b64decode(encoded, validate=True).decode() if scheme.lower() == "basic" else ""
        except ValueError:
            pair = ""
        grant = form.get("grant_type")
        with self._lock:
            if self._bad_agent(request):
                status, body = 429, {"message": "Too Many Requests", "error": 429}
            elif pair != f"{self.client_id}:{self.client_secret}" or self._client_revoked:
                status, body = 401, {"message": "Unauthorized", "error": 401}
            elif grant == "refresh_token" and (
                self.refresh_token is None or form.get("refresh_token") != self.refresh_token
            ):
                status, body = 400, {"error": 400}
            elif grant not in ("client_credentials", "refresh_token"):
                status, body = 200, {"error": "unsupported_grant_type"}
            else:
                token = secrets.token_urlsafe(18)
                self._tokens[token] = time.monotonic() + self.token_lifetime
                self.tokens_issued += 1
                status = 200
                body = {
                    "access_token": token,
                    "token_type": "bearer",
                    "expires_in": self.token_lifetime,
                    "scope": "*",
                }
            self._log(request, None, status)
        return web.json_response(body, status=status)

    async def _top(self, request: web.Request) -> web.Response:
        refused, headers = self._gate(request)
        if refused is not None:
            return refused
        sub = request.match_info["sub"]
        posts = [p for p in self.posts if p.subreddit.lower() == sub.lower()]
        start = 0
        after = request.query.get("after")
        if after:
            names = [f"t3_{p.id}" for p in posts]
            start = names.index(after) + 1 if after in names else len(posts)
        try:
            limit = max(1, min(100, int(request.query.get("limit", "25"))))
        except ValueError:
            limit = 25
        page = posts[start : start + min(limit, self.page_size)]
        more = start + len(page) < len(posts)
        escape = request.query.get("raw_json") != "1"
        body = listing(
            [{"kind": "t3", "data": post_data(p, escape)} for p in page],
            after=f"t3_{page[-1].id}" if page and more else None,
        )
        return web.json_response(body, headers=headers)

    async def _comments(self, request: web.Request) -> web.Response:
        refused, headers = self._gate(request)
        if refused is not None:
            return refused
        post = next((p for p in self.posts if p.id == request.match_info["post"]), None)
        if post is None:
            return web.json_response({"message": "Not Found", "error": 404}, status=404, headers=headers)
        body: Any = thread_document(post, escape=request.query.get("raw_json") != "1")
        return web.json_response(body, headers=headers)

    async def _not_found(self, request: web.Request) -> web.Response:
        refused, headers = self._gate(request)
        if refused is not None:
            return refused
        return web.json_response({"message": "Not Found", "error": 404}, status=404, headers=headers)
