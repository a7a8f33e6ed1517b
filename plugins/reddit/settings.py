"""``[source]`` settings of the ``reddit`` plugin."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from synthtune.core import __version__
from synthtune.plugins.reddit.story_rules import StoryRules

Period = Literal["hour", "day", "week", "month", "year", "all"]
# Reddit's API rules: "<platform>:<app ID>:<version string> (by /u/<reddit username>)".
USER_AGENT = re.compile(r"^[^:\s]+:[^:\s]+:[^:\s]+ \(by /u/[A-Za-z0-9_-]{3,20}\)$")
USERNAME = r"^[A-Za-z0-9_-]{3,20}$"


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


class RedditSourceSettings(StoryRules):
    """Where to read from, what to keep, who is asking and how politely.

    Credentials come from the environment only (``REDDIT_CLIENT_ID``, ``REDDIT_CLIENT_SECRET``,
    optionally ``REDDIT_REFRESH_TOKEN``); they are never settings, so they never reach a preset,
    the run store or a report.
    """

    period: Period = Field(default="month", description="the t= of /top: hour, day, week, month, year, all")
    max_posts: int = Field(default=100, ge=1, le=10_000, description="posts whose comments are read")
    comment_sort: Literal["confidence", "top", "new", "old", "controversial", "qa"] = "top"
    base_url: str = Field(
        default="https://oauth.reddit.com", description="the API (tests point it at a fake)"
    )
    auth_url: str = Field(default="https://www.reddit.com", description="where /api/v1/access_token lives")
    username: str | None = Field(
        default=None,
        pattern=USERNAME,
        description="your Reddit username for the User-Agent's (by /u/...); default $REDDIT_USERNAME",
    )
    app_id: str = Field(default="synthtune", pattern=r"^[^:\s]+$", description="the User-Agent's app ID")
    app_version: str = Field(
        default=__version__, pattern=r"^[^:\s]+$", description="the User-Agent's version"
    )
    platform: str = Field(default="python", pattern=r"^[^:\s]+$", description="the User-Agent's platform")
    user_agent: str | None = Field(
        default=None, description="the whole User-Agent, instead of the four parts above"
    )
    rate_window: float = Field(
        default=600.0, gt=0, description="seconds of Reddit's rate-limit window (10 minutes)"
    )
    max_pace: float = Field(
        default=10.0, ge=0, description="longest pause between two requests to stay on pace"
    )
    max_retries: int = Field(default=4, ge=0, le=20, description="retries on 429, 5xx and network errors")
    max_wait: float = Field(default=900.0, gt=0, description="longest single wait Reddit may ask for")
    timeout: float = Field(default=30.0, gt=0, description="seconds per HTTP request")
    refresh: bool = Field(default=False, description="download again instead of reading the run store")

    @field_validator("base_url", "auth_url")
    @classmethod
    def _urls(cls, value: str) -> str:
        return _http_url(value)

    @field_validator("user_agent")
    @classmethod
    def _agent(cls, value: str | None) -> str | None:
        if value is not None and not USER_AGENT.match(value):
            raise ValueError(
                "must have Reddit's form '<platform>:<app ID>:<version> (by /u/<username>)', "
                "e.g. 'python:my-dataset:1.0 (by /u/me)'"
            )
        return value
