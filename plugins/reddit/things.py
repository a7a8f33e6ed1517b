"""Reddit's JSON "things", read defensively.

Everything here is untrusted data from the network: fields are checked for type, missing fields
get safe defaults, and a permalink is only ever used as a path on the configured host after it
matched the shape Reddit gives them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from synthtune.plugins.reddit.settings import RedditSourceSettings

PERMALINK = re.compile(r"^/r/[A-Za-z0-9_]{2,21}/comments/[A-Za-z0-9]{1,16}/[^?#\s]*$")


class Post(BaseModel):
    """A submission (kind ``t3``) from a listing."""

    id: str
    title: str
    permalink: str
    subreddit: str
    author: str = ""
    stickied: bool = False
    over_18: bool = False
    num_comments: int = 0


class Comment(BaseModel):
    """A top-level comment (kind ``t1``)."""

    id: str
    body: str
    author: str = ""
    stickied: bool = False
    permalink: str = ""
    score: int = 0


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _bool(data: dict[str, Any], key: str) -> bool:
    return data.get(key) is True


def _int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _children(listing: Any) -> list[dict[str, Any]]:
    if not isinstance(listing, dict) or not isinstance(listing.get("data"), dict):
        return []
    children = listing["data"].get("children")
    return [c for c in children if isinstance(c, dict)] if isinstance(children, list) else []


def listing_posts(document: Any) -> tuple[list[Post], str | None]:
    """The posts of one ``/top`` page and the ``after`` cursor of the next (None at the end)."""
    posts = []
    for child in _children(document):
        data = child.get("data")
        if child.get("kind") != "t3" or not isinstance(data, dict):
            continue
        permalink = _str(data, "permalink")
        post_id = _str(data, "id")
        if not post_id or not PERMALINK.match(permalink):
            continue
        posts.append(
            Post(
                id=post_id,
                title=_str(data, "title"),
                permalink=permalink,
                subreddit=_str(data, "subreddit"),
                author=_str(data, "author"),
                stickied=_bool(data, "stickied"),
                over_18=_bool(data, "over_18"),
                num_comments=_int(data, "num_comments"),
            )
        )
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


def skip_reason(kind: str, data: dict[str, Any], settings: RedditSourceSettings) -> str | None:
    """Why a top-level child is not a story, or None when it is one."""
    if kind == "more":
        return "more stub"
    if kind != "t1":
        return f"not a comment ({kind})"
    body = _str(data, "body").strip()
    if _bool(data, "stickied"):
        return "stickied"
    if _str(data, "author") in settings.skip_authors:
        return "author"
    if body in ("[deleted]", "[removed]"):
        return "deleted"
    lowered = body.lower()
    if any(phrase.lower() in lowered for phrase in settings.bot_phrases):
        return "bot"
    if len(body) < settings.min_chars:
        return "short"
    if not _str(data, "id"):
        return "no id"
    return None


def comment(data: dict[str, Any]) -> Comment:
    permalink = _str(data, "permalink")
    return Comment(
        id=_str(data, "id"),
        body=_str(data, "body").strip().replace("\r\n", "\n"),
        author=_str(data, "author"),
        stickied=_bool(data, "stickied"),
        permalink=permalink if PERMALINK.match(permalink) else "",
        score=_int(data, "score"),
    )
