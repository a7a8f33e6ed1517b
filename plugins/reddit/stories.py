"""Walk a subreddit's top posts and yield their top-level comments as records."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlencode

from synthtune.core.models import Record
from synthtune.plugins.reddit.client import RedditClient
from synthtune.plugins.reddit.settings import RedditSourceSettings
from synthtune.plugins.reddit.things import Post, comment, listing_posts, skip_reason, top_level

PAGE_SIZE = 100  # Reddit's maximum; fixed so the cached page URLs do not depend on max_posts


def top_path(settings: RedditSourceSettings, after: str | None) -> str:
    """The path and query of one page of the subreddit's top posts."""
    query: dict[str, str | int] = {"t": settings.period, "limit": PAGE_SIZE, "raw_json": 1}
    if after:
        query["after"] = after
    return f"/r/{settings.subreddit}/top/.json?{urlencode(query)}"


def thread_path(post: Post, settings: RedditSourceSettings) -> str:
    """The path and query of a post's comment thread: its permalink + ``.json``. ``depth=1``
    asks Reddit to leave out the replies, which are never read."""
    query = {"raw_json": 1, "sort": settings.comment_sort, "depth": 1}
    return f"{post.permalink}.json?{urlencode(query)}"


def iter_posts(client: RedditClient, settings: RedditSourceSettings, skipped: Counter[str]) -> Iterator[Post]:
    """Up to ``max_posts`` readable posts, page after page (``after`` cursor)."""
    after: str | None = None
    seen: set[str] = set()
    taken = 0
    while True:
        posts, after = listing_posts(client.get_json(top_path(settings, after)))
        for post in posts:
            if post.id in seen:
                continue
            seen.add(post.id)
            if post.stickied:
                skipped["stickied post"] += 1
            elif settings.skip_nsfw and post.over_18:
                skipped["nsfw post"] += 1
            elif post.num_comments == 0:
                skipped["post without comments"] += 1
            else:
                yield post
                taken += 1
                if taken >= settings.max_posts:
                    return
        if after is None or not posts:
            return


def iter_stories(
    client: RedditClient, settings: RedditSourceSettings, log: logging.Logger | None = None
) -> Iterator[Record]:
    """One record per story: a top-level comment that is not a "more" stub, stickied, by a
    skipped author, a bot notice, deleted or shorter than ``min_chars``."""
    skipped: Counter[str] = Counter()
    posts = stories = 0
    for post in iter_posts(client, settings, skipped):
        posts += 1
        kept_here = 0
        for kind, data in top_level(client.get_json(thread_path(post, settings))):
            reason = skip_reason(kind, data, settings)
            if reason is not None:
                skipped[reason] += 1
                continue
            if settings.comments_per_post is not None and kept_here >= settings.comments_per_post:
                skipped["over comments_per_post"] += 1
                continue
            found = comment(data)
            kept_here += 1
            stories += 1
            yield Record(
                id=found.id,
                category=post.subreddit or settings.subreddit,
                data={
                    "text": found.body,
                    "title": post.title,
                    "prompt": post.title,
                    "permalink": client.url(found.permalink or post.permalink),
                    "author": found.author,
                    "post_id": post.id,
                    "score": found.score,
                },
            )
    if log is not None and posts == 0:
        log.warning(
            "reddit: r/%s has no readable posts for t=%s (check the subreddit name and period)",
            settings.subreddit,
            settings.period,
        )
    if log is not None:
        detail = ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items())) or "none"
        log.info(
            "reddit: r/%s: %d posts, %d stories; skipped: %s; %d downloads, %d from the run store",
            settings.subreddit,
            posts,
            stories,
            detail,
            client.requests,
            client.cache_hits,
        )
