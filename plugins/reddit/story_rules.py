"""What makes a Reddit comment a story: the rules every Reddit-shaped source shares.

The live ``reddit`` source (OAuth API) and the ``reddit-dump`` source (monthly dumps, Parquet
exports) read the same threads from different places. Both hand every post and every top-level
comment to the functions here, so the same threads give the same records, whichever source read
them: the same posts skipped (stickied, NSFW, no comments), the same comments skipped ("more"
stubs, stickied, skipped authors, deleted or removed, bot notices, too short), the same cap per
post and the same record fields.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import Field
from synthtune.core.models import Record
from synthtune.core.settings import StageSettings
from synthtune.plugins.reddit.things import Comment, Post, comment, text_field

# Records link to the public site, whichever host the thread was read from (oauth.reddit.com,
# a dump, a test server): a permalink is for people to open.
PUBLIC_SITE = "https://www.reddit.com"
DELETED_BODIES = ("[deleted]", "[removed]")


class StoryRules(StageSettings):
    """Settings every Reddit-shaped source shares: which subreddit, which posts, which comments."""

    subreddit: str = Field(default="WritingPrompts", pattern=r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")
    min_chars: int = Field(default=300, ge=0, description="shorter comments are not stories")
    comments_per_post: int | None = Field(
        default=None, ge=1, description="at most this many stories per post, best first"
    )
    skip_nsfw: bool = Field(default=True, description="skip posts marked over 18")
    skip_authors: list[str] = Field(default_factory=lambda: ["AutoModerator", "[deleted]"])
    bot_phrases: list[str] = Field(
        default_factory=lambda: ["I am a bot", "I'm a bot"],
        description="a comment containing one of these (any case) is skipped",
    )


def post_skip_reason(post: Post) -> str | None:
    """Why a post's comments are not read (before ``skip_nsfw``), or None."""
    if post.stickied:
        return "stickied post"
    if post.num_comments == 0:
        return "post without comments"
    return None


def skip_post(post: Post, rules: StoryRules) -> str | None:
    """Why a post is left out under ``rules``, or None when its comments are read."""
    reason = post_skip_reason(post)
    if reason is None and rules.skip_nsfw and post.over_18:
        return "nsfw post"
    return reason


def skip_reason(kind: str, data: dict[str, Any], rules: StoryRules) -> str | None:
    """Why a top-level child of a thread is not a story, or None when it is one. ``kind`` is
    Reddit's (``t1`` a comment, ``more`` a "load more comments" stub); ``data`` its fields."""
    if kind == "more":
        return "more stub"
    if kind != "t1":
        return f"not a comment ({kind})"
    body = text_field(data, "body").strip()
    if data.get("stickied") is True:
        return "stickied"
    if text_field(data, "author") in rules.skip_authors:
        return "author"
    if body in DELETED_BODIES:
        return "deleted"
    lowered = body.lower()
    if any(phrase.lower() in lowered for phrase in rules.bot_phrases):
        return "bot"
    if len(body) < rules.min_chars:
        return "short"
    if not text_field(data, "id"):
        return "no id"
    return None


def story_record(post: Post, found: Comment, rules: StoryRules) -> Record:
    """The record of one story: ``id`` the comment id, ``category`` the subreddit, ``data`` the
    text with the post's title as ``title``/``prompt`` and where it came from."""
    return Record(
        id=found.id,
        category=post.subreddit or rules.subreddit,
        data={
            "text": found.body,
            "title": post.title,
            "prompt": post.title,
            "permalink": PUBLIC_SITE + (found.permalink or post.permalink),
            "author": found.author,
            "post_id": post.id,
            "score": found.score,
        },
    )


def post_stories(
    post: Post,
    children: Iterable[tuple[str, dict[str, Any]]],
    rules: StoryRules,
    skipped: Counter[str],
) -> Iterator[Record]:
    """The stories among a post's top-level ``children`` (kind, data), in the order given (the
    best first), at most ``comments_per_post``; every child left out is counted in ``skipped``."""
    kept = 0
    for kind, data in children:
        reason = skip_reason(kind, data, rules)
        if reason is None and rules.comments_per_post is not None and kept >= rules.comments_per_post:
            reason = "over comments_per_post"
        if reason is not None:
            skipped[reason] += 1
            continue
        kept += 1
        yield story_record(post, comment(data), rules)


def describe_skips(skipped: Counter[str]) -> str:
    """``"author 2, bot 1"``: the skip counts for a log line."""
    return ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items())) or "none"
