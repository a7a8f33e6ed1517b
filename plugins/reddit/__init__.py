"""The ``reddit`` plugin: a source of stories (top-level comments) from a subreddit's top posts,
through Reddit's OAuth API.

Usable by any task whose prompt reads ``record.data["text"]``: each record is one top-level
comment (for r/WritingPrompts, a story) with the post's title as ``title``/``prompt``. Reddit text
is untrusted data: it is passed on as text and never interpreted. The story rules are shared with
the ``reddit-dump`` source (:mod:`synthtune.plugins.reddit.story_rules`).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator

from pydantic import BaseModel
from synthtune.core import Record, RunContext, hookimpl
from synthtune.plugins.reddit.auth import Credentials
from synthtune.plugins.reddit.client import RedditClient
from synthtune.plugins.reddit.settings import RedditSourceSettings
from synthtune.plugins.reddit.stories import iter_stories
from synthtune.plugins.reddit.transport import RedditError

__all__ = ["Credentials", "RedditClient", "RedditError", "RedditSourceSettings", "iter_stories"]


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {"source": RedditSourceSettings}.get(stage)


@hookimpl
def source(settings: RedditSourceSettings, context: RunContext) -> Iterator[Record]:
    # Raw downloads can be fetched again: their cache entries share commits (durable=False).
    cache_put = functools.partial(context.cache_put, durable=False)
    client = RedditClient(settings, context.cache_get, cache_put, context.log)
    # Stop walking (and downloading) once the run has all the records it will use.
    stories = iter_stories(client, settings, context.log)
    return stories if context.limit is None else itertools.islice(stories, context.limit)
