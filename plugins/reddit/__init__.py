"""The ``reddit`` plugin: a source of top-level comments from a subreddit's top posts.

Usable by any task whose prompt reads ``record.data["text"]``: each record is one top-level
comment (for r/WritingPrompts, a story) with the post's title as ``title``/``prompt``. Reddit text
is untrusted data: it is passed on as text and never interpreted.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel
from synthtune.core import Record, RunContext, hookimpl
from synthtune.plugins.reddit.client import RedditClient, RedditError
from synthtune.plugins.reddit.settings import RedditSourceSettings
from synthtune.plugins.reddit.stories import iter_stories

__all__ = ["RedditClient", "RedditError", "RedditSourceSettings", "iter_stories"]


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {"source": RedditSourceSettings}.get(stage)


@hookimpl
def source(settings: RedditSourceSettings, context: RunContext) -> Iterator[Record]:
    client = RedditClient(settings, context.cache_get, context.cache_put, context.log)
    return iter_stories(client, settings, context.log)
