"""Reddit's JSON "things" (posts ``t3``, comments ``t1``), read defensively.

Everything here is untrusted data, from the network or from a dump file: fields are checked for
type, missing fields get safe defaults, a post id is only used in a request path once it looks
like one of Reddit's base-36 ids, and a permalink is only kept when it has the shape Reddit gives
them (it ends up in a link on the public site).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

PERMALINK = re.compile(r"^/r/[A-Za-z0-9_]{2,21}/comments/[A-Za-z0-9]{1,16}/[^?#\s]*$")
THING_ID = re.compile(r"^[a-z0-9]{1,16}$")


class Post(BaseModel):
    """A submission (kind ``t3``)."""

    id: str
    title: str
    permalink: str
    subreddit: str
    author: str = ""
    stickied: bool = False
    over_18: bool = False
    num_comments: int = 0
    score: int = 0


class Comment(BaseModel):
    """A comment (kind ``t1``)."""

    id: str
    body: str
    author: str = ""
    stickied: bool = False
    permalink: str = ""
    score: int = 0


def text_field(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _bool(data: dict[str, Any], key: str) -> bool:
    return data.get(key) is True


def int_field(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, float) and value.is_integer():  # some exports store scores as floats
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _children(listing: Any) -> list[dict[str, Any]]:
    if not isinstance(listing, dict) or not isinstance(listing.get("data"), dict):
        return []
    children = listing["data"].get("children")
    return [c for c in children if isinstance(c, dict)] if isinstance(children, list) else []


def post(data: dict[str, Any]) -> Post | None:
    """A post from its fields, or None when it has no usable id. A missing or odd permalink is
    replaced by the canonical ``/r/SUB/comments/ID/``."""
    post_id = text_field(data, "id")
    if not THING_ID.match(post_id):
        return None
    subreddit = text_field(data, "subreddit")
    permalink = text_field(data, "permalink")
    if not PERMALINK.match(permalink):
        permalink = f"/r/{subreddit}/comments/{post_id}/" if subreddit else ""
    return Post(
        id=post_id,
        title=text_field(data, "title"),
        permalink=permalink,
        subreddit=subreddit,
        author=text_field(data, "author"),
        stickied=_bool(data, "stickied"),
        over_18=_bool(data, "over_18"),
        num_comments=int_field(data, "num_comments"),
        score=int_field(data, "score"),
    )


def listing_posts(document: Any) -> tuple[list[Post], str | None]:
    """The posts of one ``/top`` page and the ``after`` cursor of the next (None at the end)."""
    posts = []
    for child in _children(document):
        data = child.get("data")
        if child.get("kind") != "t3" or not isinstance(data, dict):
            continue
        found = post(data)
        if found is not None:
            posts.append(found)
    after = None
    if isinstance(document, dict) and isinstance(document.get("data"), dict):
        cursor = document["data"].get("after")
        after = cursor if isinstance(cursor, str) and cursor else None
    return posts, after


def top_level(document: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, data) of every top-level child of a thread: ``[1].data.children[*]``.
    Replies (each comment's ``replies``) are never looked at."""
    if not isinstance(document, list) or len(document) < 2:
        return
    for child in _children(document[1]):
        data = child.get("data")
        yield str(child.get("kind")), data if isinstance(data, dict) else {}


def comment(data: dict[str, Any]) -> Comment:
    permalink = text_field(data, "permalink")
    return Comment(
        id=text_field(data, "id"),
        body=text_field(data, "body").strip().replace("\r\n", "\n"),
        author=text_field(data, "author"),
        stickied=_bool(data, "stickied"),
        permalink=permalink if PERMALINK.match(permalink) else "",
        score=int_field(data, "score"),
    )
