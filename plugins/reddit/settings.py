"""``[source]`` settings of the ``reddit`` plugin."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator
from synthtune.core import __version__
from synthtune.core.settings import StageSettings

DEFAULT_USER_AGENT = (
    f"python:synthtune:{__version__} (dataset source plugin 'reddit'; "
    "set source.user_agent to name your project and contact)"
)
Period = Literal["hour", "day", "week", "month", "year", "all"]


class RedditSourceSettings(StageSettings):
    """Where to read from, what to keep, and how politely to ask."""

    subreddit: str = Field(default="WritingPrompts", pattern=r"^[A-Za-z0-9][A-Za-z0-9_]{1,20}$")
    period: Period = Field(default="month", description="the t= of /top: hour, day, week, month, year, all")
    max_posts: int = Field(default=100, ge=1, le=10_000, description="posts whose comments are read")
    min_chars: int = Field(default=300, ge=0, description="shorter comments are not stories")
    comments_per_post: int | None = Field(
        default=None, ge=1, description="at most this many stories per post, in Reddit's top order"
    )
    comment_sort: Literal["confidence", "top", "new", "old", "controversial", "qa"] = "top"
    skip_nsfw: bool = Field(default=True, description="skip posts marked over 18")
    skip_authors: list[str] = Field(default_factory=lambda: ["AutoModerator", "[deleted]"])
    bot_phrases: list[str] = Field(
        default_factory=lambda: ["I am a bot", "I'm a bot"],
        description="a comment containing one of these (any case) is skipped",
    )
    base_url: str = Field(default="https://www.reddit.com", description="tests point this at a fake")
    user_agent: str = Field(default=DEFAULT_USER_AGENT, min_length=8)
    min_interval: float = Field(
        default=2.0, ge=0, description="seconds between requests (Reddit asks 1 per 2 s without OAuth)"
    )
    max_retries: int = Field(default=4, ge=0, le=20, description="retries on 429, 5xx and network errors")
    max_wait: float = Field(default=900.0, gt=0, description="longest single wait Reddit may ask for")
    timeout: float = Field(default=30.0, gt=0, description="seconds per HTTP request")
    refresh: bool = Field(default=False, description="download again instead of reading the run store")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")
