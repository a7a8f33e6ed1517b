"""The ``reddit-dump`` plugin: stories from Reddit dump files instead of the live API.

Reads the public monthly dumps (newline-delimited JSON compressed with zstandard, submissions
and comments in separate files), their uncompressed form, or Parquet exports of the same, and
builds the same records as the ``reddit`` source from the same threads: both use
:mod:`synthtune.plugins.reddit.story_rules`. Needs the ``dumps`` extra
(``pip install 'synthtune[dumps]'``: zstandard and pyarrow), imported only when a file is read.
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel
from synthtune.core import Record, RunContext, hookimpl
from synthtune.plugins.reddit_dump.settings import DumpSourceSettings
from synthtune.plugins.reddit_dump.threads import dump_stories

__all__ = ["DumpSourceSettings", "dump_stories"]


@hookimpl
def stage_settings(stage: str) -> type[BaseModel] | None:
    return {"source": DumpSourceSettings}.get(stage)


@hookimpl
def source(settings: DumpSourceSettings, context: RunContext) -> Iterator[Record]:
    return dump_stories(settings, context.log)
