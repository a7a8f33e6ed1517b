"""The ``reddit`` source: parsing, skipping, paging, caching and rate limits.

Client behaviour (waits, retries, errors) is tested with a scripted fetch and a fake clock, so no
test sleeps; the walk over a subreddit is tested over real HTTP against FakeReddit.
"""

from __future__ import annotations

import json
import logging
import urllib.error
from collections.abc import Iterator
from email.message import Message
from typing import Any

import pytest
from synthtune.plugins.reddit import RedditClient, RedditError, RedditSourceSettings, iter_stories
from synthtune.plugins.reddit.client import HttpReply
from synthtune.plugins.reddit.sample_threads import DINER, NOT_STORIES, STORY_IDS
from synthtune.plugins.reddit.settings import DEFAULT_USER_AGENT
from synthtune.plugins.reddit.testing import FakeComment, FakePost, FakeReddit
from synthtune.plugins.reddit.things import listing_posts, skip_reason, top_level

# -- helpers ------------------------------------------------------------------------------------


def headers(**values: str) -> Message:
    message = Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


class Clock:
    """A fake monotonic clock that sleeping advances."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """A fetch that answers from a list of replies (or raises the exceptions in it)."""

    def __init__(self, *replies: HttpReply | Exception) -> None:
        self.replies = list(replies)
        self.urls: list[str] = []
        self.headers: list[dict[str, str]] = []

    def __call__(self, url: str, sent: dict[str, str], timeout: float) -> HttpReply:
        self.urls.append(url)
        self.headers.append(sent)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


def ok(document: Any = None, **head: str) -> HttpReply:
    return HttpReply(200, json.dumps(document if document is not None else {}).encode(), headers(**head))


def client_for(script: Script, clock: Clock, cache: dict[str, str] | None = None, **settings: Any):
    store = {} if cache is None else cache
    options = {"base_url": "https://reddit.test", "min_interval": 0.0, **settings}
    return RedditClient(
        RedditSourceSettings(**options),
        store.get,
        store.__setitem__,
        fetch=script,
        sleep=clock.sleep,
        clock=clock,
    )


@pytest.fixture
def fake_reddit() -> Iterator[FakeReddit]:
    with FakeReddit() as server:
        yield server


def walk(server: FakeReddit, cache: dict[str, str] | None = None, **settings: Any) -> list[Any]:
    store = {} if cache is None else cache
    options = {"base_url": server.base_url, "min_interval": 0.0, **settings}
    client = RedditClient(RedditSourceSettings(**options), store.get, store.__setitem__)
    return list(iter_stories(client, client.settings, logging.getLogger("test")))


# -- parsing untrusted JSON ------------------------------------------------------------------------


def test_listing_keeps_posts_with_reddit_shaped_permalinks_only() -> None:
    good = {"id": "a1", "title": "T", "permalink": "/r/WritingPrompts/comments/a1/t/", "num_comments": 3}
    document = {
        "kind": "Listing",
        "data": {
            "after": "t3_a1",
            "children": [
                {"kind": "t3", "data": good},
                {"kind": "t3", "data": {**good, "id": "a2", "permalink": "//evil.example/steal/"}},
                {"kind": "t3", "data": {**good, "id": "a3", "permalink": "https://evil.example/r/x/"}},
                {"kind": "t5", "data": {"id": "sub", "permalink": "/r/x/"}},
                "not a thing",
            ],
        },
    }
    posts, after = listing_posts(document)
    assert [p.id for p in posts] == ["a1"]
    assert after == "t3_a1"
    assert listing_posts({"data": {"after": None, "children": []}}) == ([], None)
    assert listing_posts(["garbage"]) == ([], None)


def test_skip_reasons_for_every_kind_of_non_story() -> None:
    settings = RedditSourceSettings()
    story = "x" * 300
    assert skip_reason("more", {"count": 3}, settings) == "more stub"
    assert skip_reason("t1", {"id": "a", "body": story, "stickied": True}, settings) == "stickied"
    assert skip_reason("t1", {"id": "a", "body": story, "author": "AutoModerator"}, settings) == "author"
    assert skip_reason("t1", {"id": "a", "body": story, "author": "[deleted]"}, settings) == "author"
    assert skip_reason("t1", {"id": "a", "body": "[removed]"}, settings) == "deleted"
    assert skip_reason("t1", {"id": "a", "body": story + " i AM a BOT."}, settings) == "bot"
    assert skip_reason("t1", {"id": "a", "body": "x" * 299}, settings) == "short"
    assert skip_reason("t1", {"id": "a", "body": "  " + "x" * 299 + "  "}, settings) == "short"
    assert skip_reason("t1", {"id": "a", "body": story}, settings) is None
    assert skip_reason("t1", {"id": "a", "body": "x" * 100}, RedditSourceSettings(min_chars=100)) is None


def test_only_top_level_children_are_read() -> None:
    thread = [
        {"kind": "Listing", "data": {"children": []}},
        {
            "kind": "Listing",
            "data": {
                "children": [
                    {"kind": "t1", "data": {"id": "top", "body": "b", "replies": {"data": {"children": []}}}},
                    {"kind": "more", "data": {"children": ["z"]}},
                ]
            },
        },
    ]
    assert [(kind, data.get("id")) for kind, data in top_level(thread)] == [("t1", "top"), ("more", None)]
    assert list(top_level({"not": "a thread"})) == []


# -- the client: cache, pacing, 429s, retries -------------------------------------------------------


def test_downloads_are_cached_by_url_and_refresh_bypasses_the_cache() -> None:
    clock, cache = Clock(), {}
    script = Script(ok({"n": 1}), ok({"n": 2}))
    client = client_for(script, clock, cache)
    assert client.get_json("/r/x/top/.json?t=month") == {"n": 1}
    assert client.get_json("/r/x/top/.json?t=month") == {"n": 1}
    assert script.urls == ["https://reddit.test/r/x/top/.json?t=month"]
    assert cache == {"https://reddit.test/r/x/top/.json?t=month": '{"n": 1}'}
    assert (client.requests, client.cache_hits) == (1, 1)

    fresh = client_for(script, clock, cache, refresh=True)
    assert fresh.get_json("/r/x/top/.json?t=month") == {"n": 2}
    assert len(script.urls) == 2


def test_sends_the_descriptive_user_agent() -> None:
    script = Script(ok())
    client_for(script, Clock()).get_json("/a")
    assert script.headers[0]["User-Agent"] == DEFAULT_USER_AGENT
    assert "synthtune" in DEFAULT_USER_AGENT and "0.1.0" in DEFAULT_USER_AGENT


def test_a_429_is_waited_out_using_the_reset_header() -> None:
    clock = Clock()
    throttled = HttpReply(429, b"{}", headers(x_ratelimit_remaining="0", x_ratelimit_reset="7"))
    script = Script(throttled, ok({"fine": True}, x_ratelimit_remaining="99", x_ratelimit_reset="590"))
    client = client_for(script, clock)
    assert client.get_json("/a") == {"fine": True}
    assert len(script.urls) == 2
    assert sum(clock.sleeps) == pytest.approx(7.5)  # reset + margin, and nothing more


def test_retry_after_wins_when_it_is_longer() -> None:
    clock = Clock()
    throttled = HttpReply(429, b"{}", headers(retry_after="12", x_ratelimit_reset="3"))
    client = client_for(Script(throttled, ok()), clock)
    client.get_json("/a")
    assert clock.sleeps == [pytest.approx(12.5)]


def test_retries_are_bounded_and_end_in_a_clear_error() -> None:
    clock = Clock()
    throttled = [HttpReply(429, b"{}", headers(x_ratelimit_reset="1")) for _ in range(3)]
    client = client_for(Script(*throttled), clock, max_retries=2)
    with pytest.raises(RedditError, match=r"still returned HTTP 429 after 3 attempts"):
        client.get_json("/a")
    assert client.requests == 3


def test_a_wait_longer_than_max_wait_is_refused() -> None:
    throttled = HttpReply(429, b"{}", headers(x_ratelimit_reset="3600"))
    client = client_for(Script(throttled), Clock(), max_wait=60)
    with pytest.raises(RedditError, match="asked to wait 3600s"):
        client.get_json("/a")


def test_server_errors_and_network_errors_back_off_then_succeed() -> None:
    clock = Clock()
    script = Script(
        HttpReply(503, b"busy", headers()), urllib.error.URLError("connection refused"), ok({"n": 1})
    )
    assert client_for(script, clock).get_json("/a") == {"n": 1}
    assert len(clock.sleeps) == 2 and clock.sleeps[1] > clock.sleeps[0] >= 1.0


def test_not_found_fails_at_once_with_a_hint() -> None:
    script = Script(HttpReply(404, b"{}", headers()))
    with pytest.raises(RedditError, match=r"HTTP 404 \(no such subreddit or post"):
        client_for(script, Clock()).get_json("/r/nope/top/.json")
    assert len(script.urls) == 1


def test_a_body_that_is_not_json_is_an_error_and_not_cached() -> None:
    cache: dict[str, str] = {}
    script = Script(HttpReply(200, b"<html>blocked</html>", headers()))
    with pytest.raises(RedditError, match="did not return JSON"):
        client_for(script, Clock(), cache).get_json("/a")
    assert cache == {}


def test_requests_are_spaced_by_min_interval() -> None:
    clock = Clock()
    client = client_for(Script(ok(), ok(), ok()), clock, min_interval=2.0)
    client.get_json("/a")
    clock.now += 0.5
    client.get_json("/b")
    clock.now += 5.0
    client.get_json("/c")
    assert clock.sleeps == [pytest.approx(1.5)]


def test_a_spent_budget_waits_for_the_reset_and_a_low_one_is_spread() -> None:
    clock = Clock()
    script = Script(
        ok(x_ratelimit_remaining="0.0", x_ratelimit_reset="30"),
        ok(x_ratelimit_remaining="4.0", x_ratelimit_reset="20"),
        ok(x_ratelimit_remaining="95.0", x_ratelimit_reset="600"),
        ok(),
    )
    client = client_for(script, clock)
    client.get_json("/a")
    client.get_json("/b")  # waits out the spent window
    client.get_json("/c")  # 4 left for 20 s: one every 5 s
    client.get_json("/d")  # plenty left: no wait
    assert clock.sleeps == [pytest.approx(30.5), pytest.approx(5.0)]


# -- the walk over a subreddit, over HTTP ---------------------------------------------------------------


def test_walk_yields_top_level_stories_only_across_pages(fake_reddit: FakeReddit) -> None:
    records = walk(fake_reddit)
    assert [r.id for r in records] == STORY_IDS
    texts = "\n".join(r.data["text"] for r in records)
    for comment_id, marker in NOT_STORIES.items():
        assert marker not in texts, comment_id
    first = records[0]
    assert first.category == "WritingPrompts"
    assert first.data["title"] == first.data["prompt"]
    assert first.data["title"].startswith("[WP] The last lighthouse keeper")
    assert first.data["permalink"] == f"{fake_reddit.base_url}/r/WritingPrompts/comments/abc101/" + (
        "wp_the_last_lighthouse_keeper_on_earth_receives/lamp01/"
    )
    assert first.data["author"] == "a_writer"

    tops = [r for r in fake_reddit.requests if r.path.endswith("/top/.json")]
    assert [r.query.get("after") for r in tops] == [None, "t3_abc101", "t3_abc104"]
    assert all(r.query["t"] == "month" and r.query["limit"] == "100" for r in tops)
    threads = [r.path.split("/")[4] for r in fake_reddit.requests if "/comments/" in r.path]
    assert threads == ["abc101", "abc102", "abc103"]  # not the stickied post, not the NSFW one
    thread_queries = [r.query for r in fake_reddit.requests if "/comments/" in r.path]
    assert all(q["sort"] == "top" and q["depth"] == "1" for q in thread_queries)
    assert all(r.query.get("raw_json") == "1" for r in fake_reddit.requests)
    assert {r.user_agent for r in fake_reddit.requests} == {DEFAULT_USER_AGENT}


def test_text_arrives_unescaped(fake_reddit: FakeReddit) -> None:
    diner = next(r for r in walk(fake_reddit) if r.id == "amp08")
    assert diner.data["text"] == DINER
    assert "Salt & Pepper" in diner.data["text"] and "< 5 minutes" in diner.data["text"]


def test_a_rerun_reads_the_run_store_and_sends_nothing(fake_reddit: FakeReddit) -> None:
    cache: dict[str, str] = {}
    first = walk(fake_reddit, cache)
    sent = fake_reddit.request_count
    assert sent == 6 and len(cache) == 6
    assert walk(fake_reddit, cache) == first
    assert fake_reddit.request_count == sent


def test_max_posts_and_comments_per_post_limit_the_walk(fake_reddit: FakeReddit) -> None:
    assert [r.id for r in walk(fake_reddit, max_posts=1)] == ["lamp01", "tide02"]
    assert fake_reddit.request_count == 2  # one listing page, one thread
    limited = walk(fake_reddit, comments_per_post=1)
    assert [r.id for r in limited] == ["lamp01", "clock04", "amp08"]


def test_period_subreddit_and_nsfw_settings_reach_reddit(fake_reddit: FakeReddit) -> None:
    records = walk(fake_reddit, period="week", skip_nsfw=False)
    assert "nsfw1" in [r.id for r in records]
    assert fake_reddit.requests[0].query["t"] == "week"
    assert walk(fake_reddit, subreddit="AskHistorians") == []
    assert fake_reddit.requests[-1].path == "/r/AskHistorians/top/.json"


def test_a_throttled_fake_is_retried_after_the_advertised_reset(fake_reddit: FakeReddit) -> None:
    fake_reddit.throttle(times=1, reset=4)
    clock = Clock()
    settings = RedditSourceSettings(base_url=fake_reddit.base_url, min_interval=0)
    client = RedditClient(settings, {}.get, lambda k, v: None, sleep=clock.sleep, clock=clock)
    records = list(iter_stories(client, settings))
    assert [r.id for r in records] == STORY_IDS
    assert [r.status for r in fake_reddit.requests[:2]] == [429, 200]
    assert fake_reddit.requests[0].path == fake_reddit.requests[1].path
    assert clock.sleeps == [pytest.approx(4.5)]


def test_the_fake_refuses_python_default_user_agents(fake_reddit: FakeReddit) -> None:
    settings = RedditSourceSettings(
        base_url=fake_reddit.base_url, user_agent="Python-urllib/3.11", max_retries=0
    )
    client = RedditClient(settings, {}.get, lambda k, v: None)
    with pytest.raises(RedditError, match="HTTP 429"):
        client.get_json("/r/WritingPrompts/top/.json")


def test_custom_threads_for_plugin_authors() -> None:
    posts = [
        FakePost(
            "p1",
            "[WP] One prompt",
            [FakeComment("c1", "y" * 400), FakeComment("c2", "too short"), FakeComment("m", kind="more")],
            subreddit="shortstories",
        )
    ]
    with FakeReddit(posts, page_size=10) as server:
        records = walk(server, subreddit="shortstories")
    assert [(r.id, r.category) for r in records] == [("c1", "shortstories")]


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        RedditSourceSettings(subreddit="../../etc")
    with pytest.raises(ValueError):
        RedditSourceSettings(period="decade")
    with pytest.raises(ValueError):
        RedditSourceSettings(base_url="ftp://reddit.com")
