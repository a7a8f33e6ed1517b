"""Threads for :class:`~synthtune.plugins.reddit.testing.FakeReddit`, and the JSON Reddit gives them.

:class:`FakePost` and :class:`FakeComment` describe a thread; :func:`listing` and
:func:`thread_document` render it in Reddit's shapes (a ``Listing`` of ``t3`` posts; a two-element
array of the post and its ``t1`` comments with nested ``replies`` and ``more`` stubs). Like
Reddit's legacy JSON, text is HTML-escaped (``&``, ``<``, ``>``) unless ``escape=False``
(``raw_json=1``).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

CREATED_UTC = 1_717_200_000  # 2024-06-01, when every fake post was made; comments follow


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


def _text(value: str, escape: bool) -> str:
    """Reddit's legacy JSON escapes &, < and > unless ``raw_json=1`` is asked."""
    return html.escape(value, quote=False) if escape else value


def listing(children: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
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


def post_data(post: FakePost, escape: bool) -> dict[str, Any]:
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
        "created_utc": float(CREATED_UTC),
        "is_self": True,
    }


def thread_document(post: FakePost, escape: bool) -> list[dict[str, Any]]:
    """What ``/comments/{id}`` answers: the post's listing, then its comments' listing."""
    counter = iter(range(1, 1_000_000))
    return [
        listing([{"kind": "t3", "data": post_data(post, escape)}], after=None),
        listing(
            [_comment_thing(c, post, f"t3_{post.id}", 0, escape, counter) for c in post.comments], after=None
        ),
    ]


def _count(comments: list[FakeComment]) -> int:
    return sum(
        (c.kind == "t1") + _count(c.replies) + (len(c.children) if c.kind == "more" else 0) for c in comments
    )


def _comment_thing(
    c: FakeComment, post: FakePost, parent: str, depth: int, escape: bool, counter: Any
) -> dict[str, Any]:
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
    created = CREATED_UTC + 60 * next(counter)
    replies: Any = ""
    if c.replies:
        replies = listing(
            [_comment_thing(r, post, f"t1_{c.id}", depth + 1, escape, counter) for r in c.replies], after=None
        )
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
            "created_utc": float(created),
            "replies": replies,
        },
    }
