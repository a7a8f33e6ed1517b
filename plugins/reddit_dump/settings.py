"""``[source]`` settings of the ``reddit-dump`` plugin."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator, model_validator
from synthtune.plugins.reddit.story_rules import StoryRules

Files = str | list[str]


class DumpSourceSettings(StoryRules):
    """Which dump files to read, which posts to take, and the story rules shared with the live
    ``reddit`` source (subreddit, ``min_chars``, ``skip_authors``, ``bot_phrases``, ...).

    ``submissions`` and ``comments`` are a file, a glob (``dumps/RS_2024-*.zst``) or a list of
    either; relative paths are resolved against the current directory. A file is read by its
    suffix: ``.zst`` (zstandard-compressed newline-delimited JSON, the public monthly dumps),
    ``.jsonl``/``.ndjson`` (the same, uncompressed) or ``.parquet``.
    """

    submissions: Files = Field(description="the posts: RS_*.zst, *_submissions.zst, .jsonl or .parquet")
    comments: Files = Field(description="the comments: RC_*.zst, *_comments.zst, .jsonl or .parquet")
    max_posts: int = Field(
        default=100, ge=1, le=1_000_000, description="read the stories of this many best-scoring posts"
    )
    min_post_score: int | None = Field(default=None, description="skip posts scoring less")
    min_score: int | None = Field(default=None, description="skip stories scoring less")
    since: date | None = Field(default=None, description="only posts made on or after this day (UTC)")
    until: date | None = Field(default=None, description="only posts made before this day (UTC)")
    order: Literal["top", "file"] = Field(
        default="top",
        description="top: best posts first, each post's best stories first (the live source's order; "
        "reads every file before the first record); file: as the comments file has them (a record as "
        "soon as it is read)",
    )
    unescape_html: bool = Field(
        default=True,
        description="undo Reddit's &amp; &lt; &gt; escaping, which the Pushshift/Arctic Shift dumps keep",
    )
    on_bad_line: Literal["warn", "error"] = Field(
        default="warn",
        description="a line that is not JSON, or a truncated file: warn and use the rest, or stop",
    )

    @field_validator("submissions", "comments")
    @classmethod
    def _some(cls, value: Files) -> Files:
        items = [value] if isinstance(value, str) else value
        if not items or not all(isinstance(item, str) and item.strip() for item in items):
            raise ValueError("name at least one file or glob")
        return value

    @model_validator(mode="after")
    def _window(self) -> DumpSourceSettings:
        if self.since and self.until and self.until <= self.since:
            raise ValueError(f"until ({self.until}) is not after since ({self.since})")
        return self
