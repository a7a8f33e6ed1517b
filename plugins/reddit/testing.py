"""A fake Reddit for tests: real HTTP on 127.0.0.1 serving Reddit-shaped JSON.

:class:`FakeReddit` answers the two public endpoints the ``reddit`` source uses, in the shapes
Reddit gives them: ``/r/{sub}/top/.json`` (a ``Listing`` of ``t3`` posts, ``page_size`` at a time
with an ``after`` cursor) and ``{permalink}.json`` (a two-element array: the post, then its
comments as ``t1`` children with nested ``replies`` and ``more`` stubs). Like Reddit it sends
``x-ratelimit-*`` headers, refuses requests without a User-Agent (or with Python's default one)
with a 429, and HTML-escapes text unless ``raw_json=1`` is asked. :meth:`FakeReddit.throttle`
makes the next requests fail with a 429. Every request is logged in :attr:`FakeReddit.requests`.

Plugin authors can reuse it with their own threads::

    from synthtune.plugins.reddit.testing import FakeComment, FakePost, FakeReddit

    with FakeReddit([FakePost("p1", "[WP] A prompt", [FakeComment("c1", "A story ...")])]) as reddit:
        ...  # point source.base_url at reddit.base_url

With no posts it serves :func:`synthtune.plugins.reddit.sample_threads.sample_posts`.
"""

from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from synthtune.core.testing.server import LocalServer


@dataclass
class FakeComment:
    """A top-level comment (or a reply, inside ``replies``); ``kind="more"`` makes a "load more
    comments" stub whose ``children`` are the ids it stands for."""

    id: str
    body: str = ""
    author: str = "a_writer"
    stickied: bool = False
    distinguished: str | None = None
    score: int = 10
    kind: str = "t1"
    replies: list[FakeComment] = field(default_factory=list)
    children: list[str] = field(default_factory=list)


@dataclass
class FakePost:
    id: str
    title: str
    comments: list[FakeComment] = field(default_factory=list)
    author: str = "a_prompter"
    subreddit: str = "WritingPrompts"
    stickied: bool = False
    over_18: bool = False
    score: int = 1000
    selftext: str = ""

    @property
    def slug(self) -> str:
        words = "".join(c if c.isalnum() else " " for c in self.title.lower()).split()
        return "_".join(words[:8]) or "post"

    @property
    def permalink(self) -> str:
        return f"/r/{self.subreddit}/comments/{self.id}/{self.slug}/"


@dataclass
class FakeRedditRequest:
    """One request as the fake saw it."""

    path: str
    query: dict[str, str]
    user_agent: str
    status: int
    at: float  # time.monotonic() on arrival


class FakeReddit(LocalServer):
    """A fake reddit.com in a background thread; use as a context manager or start()/stop()."""

    def __init__(
        self,
        posts: list[FakePost] | None = None,
        *,
        page_size: int = 2,
        quota: int = 100,
        window: int = 600,
    ) -> None:
        if posts is None:
            from synthtune.plugins.reddit.sample_threads import sample_posts

            posts = sample_posts()
        super().__init__()
        self.posts = posts
        self.page_size = page_size
        self.quota = quota
        self.window = window
        self.requests: list[FakeRedditRequest] = []
        self._throttle: list[dict[str, str]] = []
        self._used = 0
        self._lock = threading.Lock()

    def __enter__(self) -> FakeReddit:
        self.start()
        return self

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/r/{sub}/top/.json", self._top)
        app.router.add_get("/r/{sub}/top.json", self._top)
        app.router.add_get("/r/{sub}/comments/{post}/{slug}/.json", self._thread_json)
        app.router.add_get("/r/{sub}/comments/{post}/{slug}.json", self._thread_json)
        app.router.add_route("*", "/{tail:.*}", self._not_found)

    # -- scripting and counters -------------------------------------------------------------------

    def throttle(self, times: int = 1, reset: int = 1, retry_after: int | None = None) -> None:
        """Answer the next ``times`` requests with a 429, as Reddit does when the budget is
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

    @property
    def request_count(self) -> int:
        return len(self.requests)

    def paths(self, status: int | None = None) -> list[str]:
        """Paths requested so far (only those answered with ``status`` when given)."""
        return [r.path for r in self.requests if status is None or r.status == status]

    # -- handlers ---------------------------------------------------------------------------------

    def _gate(self, request: web.Request) -> web.Response | None:
        """Log the request; answer 429 when throttled or when the User-Agent is missing or
        Python's default (Reddit blocks those)."""
        agent = request.headers.get("User-Agent", "")
        with self._lock:
            scripted = self._throttle.pop(0) if self._throttle else None
            if scripted is None and (not agent or agent.startswith("Python-urllib")):
                scripted = {"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "600"}
            status = 429 if scripted is not None else 200
            self.requests.append(
                FakeRedditRequest(request.path, dict(request.query), agent, status, time.monotonic())
            )
            if scripted is None:
                self._used += 1
        if scripted is not None:
            refusal = {"message": "Too Many Requests", "error": 429}
            return web.json_response(refusal, status=429, headers=scripted)
        return None

    def _budget_headers(self) -> dict[str, str]:
        with self._lock:
            used = self._used
        return {
            "x-ratelimit-used": str(used),
            "x-ratelimit-remaining": f"{max(0, self.quota - used):.1f}",
            "x-ratelimit-reset": str(self.window),
        }

    async def _top(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
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
        body = _listing(
            [{"kind": "t3", "data": _post_data(p, escape)} for p in page],
            after=f"t3_{page[-1].id}" if page and more else None,
        )
        return web.json_response(body, headers=self._budget_headers())

    async def _thread_json(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        post = next((p for p in self.posts if p.id == request.match_info["post"]), None)
        if post is None:
            return web.json_response({"message": "Not Found", "error": 404}, status=404)
        escape = request.query.get("raw_json") != "1"
        body = [
            _listing([{"kind": "t3", "data": _post_data(post, escape)}], after=None),
            _listing([_comment_thing(c, post, 0, escape) for c in post.comments], after=None),
        ]
        return web.json_response(body, headers=self._budget_headers())

    async def _not_found(self, request: web.Request) -> web.Response:
        refused = self._gate(request)
        if refused is not None:
            return refused
        return web.json_response({"message": "Not Found", "error": 404}, status=404)


def _text(value: str, escape: bool) -> str:
    """Reddit's legacy JSON escapes &, < and > unless ``raw_json=1`` is asked."""
    return html.escape(value, quote=False) if escape else value


def _listing(children: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
    return {
        "kind": "Listing",
        "data": {
            "after": after,
            "dist": len(children),
            "modhash": "",
            "geo_filter": "",
            "children": children,
            "before": None,
        },
    }


def _post_data(post: FakePost, escape: bool) -> dict[str, Any]:
    return {
        "subreddit": post.subreddit,
        "selftext": _text(post.selftext, escape),
        "author": post.author,
        "title": _text(post.title, escape),
        "name": f"t3_{post.id}",
        "id": post.id,
        "score": post.score,
        "over_18": post.over_18,
        "stickied": post.stickied,
        "num_comments": _count(post.comments),
        "permalink": post.permalink,
        "url": f"https://www.reddit.com{post.permalink}",
        "created_utc": 1_717_200_000.0,
        "is_self": True,
    }


def _count(comments: list[FakeComment]) -> int:
    return sum(
        (c.kind == "t1") + _count(c.replies) + (len(c.children) if c.kind == "more" else 0) for c in comments
    )


def _comment_thing(c: FakeComment, post: FakePost, depth: int, escape: bool) -> dict[str, Any]:
    parent = f"t3_{post.id}"
    if c.kind == "more":
        return {
            "kind": "more",
            "data": {
                "count": len(c.children),
                "name": f"t1_{c.id}",
                "id": c.id,
                "parent_id": parent,
                "depth": depth,
                "children": list(c.children),
            },
        }
    replies: Any = ""
    if c.replies:
        replies = _listing([_comment_thing(r, post, depth + 1, escape) for r in c.replies], after=None)
    return {
        "kind": "t1",
        "data": {
            "id": c.id,
            "name": f"t1_{c.id}",
            "author": c.author,
            "body": _text(c.body, escape),
            "body_html": html.escape(f'<div class="md"><p>{c.body}</p></div>'),
            "stickied": c.stickied,
            "distinguished": c.distinguished,
            "score": c.score,
            "depth": depth,
            "parent_id": parent,
            "link_id": f"t3_{post.id}",
            "permalink": f"{post.permalink}{c.id}/",
            "subreddit": post.subreddit,
            "replies": replies,
        },
    }
