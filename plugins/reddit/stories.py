"""Walk a subreddit's top posts through the API and yield their stories as records."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from urllib.parse import urlencode

from synthtune.core.models import Record
from synthtune.plugins.reddit.client import RedditClient
from synthtune.plugins.reddit.settings import RedditSourceSettings
from synthtune.plugins.reddit.story_rules import describe_skips, post_stories, skip_post
from synthtune.plugins.reddit.things import Post, listing_posts, top_level

PAGE_SIZE = 100  # Reddit's maximum; fixed so the cached page URLs do not depend on max_posts


def top_path(settings: RedditSourceSettings, after: str | None) -> str:
    """The path and query of one page of the subreddit's top posts (PRAW's ``r/{sub}/top``)."""
    query: dict[str, str | int] = {"t": settings.period, "limit": PAGE_SIZE, "raw_json": 1}
    if after:
        query["after"] = after
    return f"/r/{settings.subreddit}/top?{urlencode(query)}"


def thread_path(post: Post, settings: RedditSourceSettings) -> str:
    """The path and query of a post's comment thread (PRAW's ``comments/{id}/``). ``depth=1``
    asks Reddit to leave out the replies, which are never read."""
    query = {"raw_json": 1, "sort": settings.comment_sort, "depth": 1}
    return f"/comments/{post.id}?{urlencode(query)}"


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
            reason = skip_post(post, settings)
            if reason is not None:
                skipped[reason] += 1
                continue
            yield post
            taken += 1
            if taken >= settings.max_posts:
                return
        if after is None or not posts:
            return


def iter_stories(
    client: RedditClient, settings: RedditSourceSettings, log: logging.Logger | None = None
) -> Iterator[Record]:
    """One record per story of each post, by the shared story rules
    (:mod:`~synthtune.plugins.reddit.story_rules`), lazily: nothing is fetched before it is
    needed, so a consumer that stops early stops the downloads."""
    skipped: Counter[str] = Counter()
    posts = stories = 0
    for post in iter_posts(client, settings, skipped):
        posts += 1
        children = top_level(client.get_json(thread_path(post, settings)))
        for record in post_stories(post, children, settings, skipped):
            stories += 1
            yield record
    if log is not None and posts == 0:
        log.warning(
            "reddit: r/%s has no readable posts for t=%s (check the subreddit name and period)",
            settings.subreddit,
            settings.period,
        )
    if log is not None:
        log.info(
            "reddit: r/%s: %d posts, %d stories; skipped: %s; %d requests, %d from the run store",
            settings.subreddit,
            posts,
            stories,
            describe_skips(skipped),
            client.requests,
            client.cache_hits,
        )
