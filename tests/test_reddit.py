"""The ``reddit`` source: parsing, story rules, OAuth, pacing, caching and refusals.

Client behaviour (tokens, waits, retries, errors) is tested with a scripted fetch and a fake
clock, so no test sleeps on a fixed delay; the walk over a subreddit is tested over real HTTP
against FakeReddit, which checks the bearer token and the User-Agent and sends rate-limit headers.
"""

from __future__ import annotations

import base64
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

import pytest
from synthtune.core.errors import ConfigError
from synthtune.plugins.reddit import (
    Credentials,
    RedditClient,
    RedditError,
    RedditSourceSettings,
    iter_stories,
)
from synthtune.plugins.reddit.auth import user_agent
from synthtune.plugins.reddit.sample_threads import DINER, NOT_STORIES, STORY_IDS
from synthtune.plugins.reddit.story_rules import StoryRules, skip_reason
from synthtune.plugins.reddit.testing import FakeComment, FakePost, FakeReddit
from synthtune.plugins.reddit.things import listing_posts, top_level
from synthtune.plugins.reddit.transport import HttpReply

CREDENTIALS = Credentials("app-id", "app-secret")
AGENT = "python:synthtune:0.1.0 (by /u/tester)"

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


def token_reply(token: str = "tok-1", expires_in: int = 3600) -> HttpReply:
    body = {"access_token": token, "token_type": "bearer", "expires_in": expires_in, "scope": "*"}
    return HttpReply(200, json.dumps(body).encode(), headers())


class Script:
    """A fetch that answers token requests with fresh tokens and API requests from a list of
    replies (or raises the exceptions in it)."""

    def __init__(self, *replies: HttpReply | Exception, tokens: list[HttpReply] | None = None) -> None:
        self.replies = list(replies)
        self.tokens = tokens
        self.calls: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def __call__(
        self, method: str, url: str, sent: dict[str, str], body: bytes | None, timeout: float
    ) -> HttpReply:
        self.calls.append((method, url, sent, body))
        if url.endswith("/api/v1/access_token"):
            if self.tokens is not None:
                return self.tokens.pop(0)
            return token_reply(f"tok-{len(self.token_calls)}")
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    @property
    def token_calls(self) -> list[tuple[str, str, dict[str, str], bytes | None]]:
        return [c for c in self.calls if c[1].endswith("/api/v1/access_token")]

    @property
    def api_calls(self) -> list[tuple[str, str, dict[str, str], bytes | None]]:
        return [c for c in self.calls if not c[1].endswith("/api/v1/access_token")]


def ok(document: Any = None, **head: str) -> HttpReply:
    return HttpReply(200, json.dumps(document if document is not None else {}).encode(), headers(**head))


def client_for(
    script: Script, clock: Clock, cache: dict[str, str] | None = None, **settings: Any
) -> RedditClient:
    store = {} if cache is None else cache
    options = {
        "base_url": "https://oauth.reddit.test",
        "auth_url": "https://www.reddit.test",
        "username": "tester",
    }
    return RedditClient(
        RedditSourceSettings(**{**options, **settings}),
        store.get,
        store.__setitem__,
        credentials=CREDENTIALS,
        fetch=script,
        sleep=clock.sleep,
        clock=clock,
    )


@pytest.fixture
def fake_reddit() -> Iterator[FakeReddit]:
    with FakeReddit() as server:
        yield server


def http_client(server: FakeReddit, cache: dict[str, str] | None = None, **settings: Any) -> RedditClient:
    store = {} if cache is None else cache
    options = {"base_url": server.base_url, "auth_url": server.base_url, "username": "tester", **settings}
    credentials = Credentials(server.client_id, server.client_secret, server.refresh_token)
    return RedditClient(
        RedditSourceSettings(**options), store.get, store.__setitem__, credentials=credentials
    )


def walk(server: FakeReddit, cache: dict[str, str] | None = None, **settings: Any) -> list[Any]:
    client = http_client(server, cache, **settings)
    return list(iter_stories(client, client.settings, logging.getLogger("test")))


# -- parsing untrusted JSON ------------------------------------------------------------------------


def test_listing_keeps_posts_with_reddit_ids_and_fixes_odd_permalinks() -> None:
    good = {"id": "a1", "title": "T", "subreddit": "WritingPrompts", "num_comments": 3}
    good["permalink"] = "/r/WritingPrompts/comments/a1/t/"
    document = {
        "kind": "Listing",
        "data": {
            "after": "t3_a1",
            "children": [
                {"kind": "t3", "data": good},
                {"kind": "t3", "data": {**good, "id": "a2", "permalink": "//evil.example/steal/"}},
                {"kind": "t3", "data": {**good, "id": "../../api/x"}},
                {"kind": "t5", "data": {"id": "sub", "permalink": "/r/x/"}},
                "not a thing",
            ],
        },
    }
    posts, after = listing_posts(document)
    assert [(p.id, p.permalink) for p in posts] == [
        ("a1", "/r/WritingPrompts/comments/a1/t/"),
        ("a2", "/r/WritingPrompts/comments/a2/"),  # never a link elsewhere
    ]
    assert after == "t3_a1"
    assert listing_posts({"data": {"after": None, "children": []}}) == ([], None)
    assert listing_posts(["garbage"]) == ([], None)


def test_skip_reasons_for_every_kind_of_non_story() -> None:
    rules = StoryRules()
    story = "x" * 300
    assert skip_reason("more", {"count": 3}, rules) == "more stub"
    assert skip_reason("t1", {"id": "a", "body": story, "stickied": True}, rules) == "stickied"
    assert skip_reason("t1", {"id": "a", "body": story, "author": "AutoModerator"}, rules) == "author"
    assert skip_reason("t1", {"id": "a", "body": story, "author": "[deleted]"}, rules) == "author"
    assert skip_reason("t1", {"id": "a", "body": "[removed]"}, rules) == "deleted"
    assert skip_reason("t1", {"id": "a", "body": "[deleted]", "author": "x"}, rules) == "deleted"
    assert skip_reason("t1", {"id": "a", "body": story + " i AM a BOT."}, rules) == "bot"
    assert skip_reason("t1", {"id": "a", "body": "x" * 299}, rules) == "short"
    assert skip_reason("t1", {"id": "a", "body": "  " + "x" * 299 + "  "}, rules) == "short"
    assert skip_reason("t1", {"id": "a", "body": story}, rules) is None
    assert skip_reason("t1", {"id": "a", "body": "x" * 100}, StoryRules(min_chars=100)) is None


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


# -- OAuth: credentials, User-Agent, tokens -------------------------------------------------------------


def test_the_token_request_is_an_app_only_grant_with_basic_auth() -> None:
    script = Script(ok({"n": 1}), ok({"n": 2}))
    client = client_for(script, Clock())
    client.get_json("/a")
    client.get_json("/b")
    [(method, url, sent, body)] = script.token_calls
    assert (method, url) == ("POST", "https://www.reddit.test/api/v1/access_token")
    assert sent["Authorization"] == "Basic " + base64.b64encode(b"app-id:app-secret").decode()
    assert sent["User-Agent"] == AGENT
    assert parse_qs((body or b"").decode()) == {"grant_type": ["client_credentials"]}
    for _, url, sent, _ in script.api_calls:  # one token, reused
        assert url.startswith("https://oauth.reddit.test/")
        assert sent["Authorization"] == "bearer tok-1" and sent["User-Agent"] == AGENT


def test_a_refresh_token_is_used_for_a_user_context_app() -> None:
    script = Script(ok())
    client = client_for(script, Clock())
    client.credentials = Credentials("app-id", "app-secret", "refresh-me")
    client.get_json("/a")
    body = script.token_calls[0][3] or b""
    assert parse_qs(body.decode()) == {"grant_type": ["refresh_token"], "refresh_token": ["refresh-me"]}


def test_the_user_agent_follows_reddits_form() -> None:
    settings = RedditSourceSettings(app_id="my-dataset", app_version="2.1")
    assert user_agent(settings, {"REDDIT_USERNAME": "someone"}) == "python:my-dataset:2.1 (by /u/someone)"
    assert user_agent(RedditSourceSettings(username="me_too"), {}) == "python:synthtune:0.1.0 (by /u/me_too)"
    with pytest.raises(ConfigError, match="REDDIT_USERNAME"):
        user_agent(settings, {})
    assert user_agent(RedditSourceSettings(user_agent="web:x:v1 (by /u/abc)"), {}) == "web:x:v1 (by /u/abc)"
    with pytest.raises(ValueError, match="by /u/"):
        RedditSourceSettings(user_agent="Mozilla/5.0 (X11; Linux x86_64)")


def test_missing_credentials_say_what_changed_and_what_to_do() -> None:
    with pytest.raises(ConfigError) as caught:
        Credentials.from_env({"REDDIT_CLIENT_ID": "x"})
    message = str(caught.value)
    assert "\n" not in message and "REDDIT_CLIENT_SECRET not set" in message
    assert "403" in message and "OAuth app" in message and "approval" in message
    assert "writing-coach-dump" in message and "writing-coach-hf" in message
    assert '"The reddit source" in the README' in message
    assert Credentials.from_env({"REDDIT_CLIENT_ID": "i", "REDDIT_CLIENT_SECRET": "s"}) == Credentials(
        "i", "s"
    )
    assert "secret-value" not in repr(Credentials("i", "secret-value"))


def test_an_expiring_token_is_renewed_before_it_lapses() -> None:
    clock = Clock()
    script = Script(ok(), ok(), ok(), tokens=[token_reply("first", 100), token_reply("second", 100)])
    client = client_for(script, clock)
    client.get_json("/a")
    clock.now += 95  # inside the renewal margin (10% of the lifetime)
    client.get_json("/b")
    client.get_json("/c")
    assert [c[2]["Authorization"] for c in script.api_calls] == [
        "bearer first",
        "bearer second",
        "bearer second",
    ]


def test_a_refused_token_is_renewed_once_then_reported_as_revoked() -> None:
    unauthorized = HttpReply(
        401, b'{"error": 401}', headers(www_authenticate='Bearer realm="reddit", error="invalid_token"')
    )
    script = Script(unauthorized, ok({"n": 1}))
    assert client_for(script, Clock()).get_json("/a") == {"n": 1}
    assert len(script.token_calls) == 2

    script = Script(unauthorized, unauthorized, ok())
    with pytest.raises(RedditError, match=r"refused a freshly issued token \(HTTP 401 twice\)") as caught:
        client_for(script, Clock()).get_json("/a")
    assert len(script.api_calls) == 2 and len(script.token_calls) == 2  # no loop
    assert "app-secret" not in str(caught.value)


def test_refused_app_credentials_are_one_line_without_the_secret() -> None:
    refusals = [
        HttpReply(401, b'{"message": "Unauthorized", "error": 401}', headers()),
        HttpReply(200, b'{"error": "invalid_grant"}', headers()),
        HttpReply(400, b'{"error": 400}', headers()),
    ]
    for refusal in refusals:
        script = Script(ok(), tokens=[refusal])
        with pytest.raises(RedditError) as caught:
            client_for(script, Clock()).get_json("/a")
        message = str(caught.value)
        assert "refused the app's credentials" in message and "\n" not in message
        assert "app-secret" not in message and "prefs/apps" in message
        assert script.api_calls == []


def test_a_403_explains_what_changed_at_reddit() -> None:
    script = Script(HttpReply(403, b"<html>blocked</html>", headers()))
    with pytest.raises(RedditError) as caught:
        client_for(script, Clock()).get_json("/r/WritingPrompts/top")
    message = str(caught.value)
    assert "HTTP 403" in message and "approved app" in message and "writing-coach-dump" in message
    assert '"The reddit source" in the README' in message and "\n" not in message
    assert len(script.api_calls) == 1


# -- the client: cache, pacing, 429s, retries -------------------------------------------------------


def test_downloads_are_cached_by_url_and_refresh_bypasses_the_cache() -> None:
    clock, cache = Clock(), {}
    script = Script(ok({"n": 1}), ok({"n": 2}))
    client = client_for(script, clock, cache)
    assert client.get_json("/r/x/top?t=month") == {"n": 1}
    assert client.get_json("/r/x/top?t=month") == {"n": 1}
    assert [c[1] for c in script.api_calls] == ["https://oauth.reddit.test/r/x/top?t=month"]
    assert cache == {"https://oauth.reddit.test/r/x/top?t=month": '{"n": 1}'}
    assert client.cache_hits == 1

    fresh = client_for(script, clock, cache, refresh=True)
    assert fresh.get_json("/r/x/top?t=month") == {"n": 2}
    assert len(script.api_calls) == 2


def test_a_cached_walk_needs_no_credentials() -> None:
    cache = {"https://oauth.reddit.test/a": '{"n": 1}'}
    client = RedditClient(
        RedditSourceSettings(base_url="https://oauth.reddit.test"),
        cache.get,
        cache.__setitem__,
        fetch=Script(),
    )
    assert client.get_json("/a") == {"n": 1}  # no REDDIT_* in the environment (conftest)


def test_a_429_is_waited_out_using_the_reset_header() -> None:
    clock = Clock()
    throttled = HttpReply(429, b"{}", headers(x_ratelimit_remaining="0", x_ratelimit_reset="7"))
    script = Script(
        throttled,
        ok({"fine": True}, x_ratelimit_used="1", x_ratelimit_remaining="999", x_ratelimit_reset="590"),
    )
    client = client_for(script, clock)
    assert client.get_json("/a") == {"fine": True}
    assert len(script.api_calls) == 2
    assert sum(clock.sleeps) == pytest.approx(7.5)  # reset + margin, and nothing more


def test_retry_after_wins_when_it_is_longer() -> None:
    clock = Clock()
    throttled = HttpReply(429, b"{}", headers(retry_after="12", x_ratelimit_reset="3"))
    client_for(Script(throttled, ok()), clock).get_json("/a")
    assert clock.sleeps == [pytest.approx(12.5)]


def test_retries_are_bounded_and_end_in_a_clear_error() -> None:
    clock = Clock()
    throttled = [HttpReply(429, b"{}", headers(x_ratelimit_reset="1")) for _ in range(3)]
    client = client_for(Script(*throttled), clock, max_retries=2)
    with pytest.raises(RedditError, match=r"still returned HTTP 429 after 3 attempts"):
        client.get_json("/a")


def test_a_wait_longer_than_max_wait_is_refused() -> None:
    throttled = HttpReply(429, b"{}", headers(x_ratelimit_reset="3600"))
    with pytest.raises(RedditError, match="asked to wait 3600s"):
        client_for(Script(throttled), Clock(), max_wait=60).get_json("/a")


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
        client_for(script, Clock()).get_json("/r/nope/top")
    assert len(script.api_calls) == 1


def test_a_redirect_to_a_login_page_is_reported_not_followed() -> None:
    script = Script(HttpReply(302, b"", headers(location="https://www.reddit.com/login/")))
    with pytest.raises(RedditError, match="redirected .*login"):
        client_for(script, Clock()).get_json("/r/x/top")


def test_a_body_that_is_not_json_is_an_error_and_not_cached() -> None:
    cache: dict[str, str] = {}
    script = Script(HttpReply(200, b"<html>blocked</html>", headers()))
    with pytest.raises(RedditError, match="did not return JSON"):
        client_for(script, Clock(), cache).get_json("/a")
    assert cache == {}


def test_pacing_follows_the_headers_not_a_fixed_interval() -> None:
    clock = Clock()
    budget = {"x_ratelimit_reset": "300"}
    script = Script(
        ok(**budget, x_ratelimit_used="10", x_ratelimit_remaining="990"),  # well under pace
        ok(**budget, x_ratelimit_used="600", x_ratelimit_remaining="400"),  # far ahead of pace
        ok(**budget, x_ratelimit_used="510", x_ratelimit_remaining="490"),  # 6 s ahead of pace
        ok(x_ratelimit_used="1000", x_ratelimit_remaining="0", x_ratelimit_reset="30"),  # spent
        ok(),
    )
    client = client_for(script, clock)
    for path in ("/a", "/b", "/c", "/d", "/e"):
        client.get_json(path)
    # Even pace: 1000 requests over 600 s. After the first answer, none; then the cap
    # (max_pace, 10 s); then the 6 s the budget is ahead; then the reset plus its margin.
    assert clock.sleeps == [pytest.approx(10.0), pytest.approx(6.0), pytest.approx(30.5)]


def test_answers_without_headers_count_against_the_last_budget() -> None:
    clock = Clock()
    script = Script(ok(x_ratelimit_used="999", x_ratelimit_remaining="1", x_ratelimit_reset="40"), ok(), ok())
    client = client_for(script, clock, max_pace=100)
    client.get_json("/a")
    client.get_json("/b")  # 1 left, 40 s to go: 999 used is 39.4 s ahead of an even pace
    client.get_json("/c")  # the header-less answer spent the last one: wait for the reset
    assert clock.sleeps == [pytest.approx(39.4), pytest.approx(40.5 - 39.4)]


# -- the walk over a subreddit, over HTTP ---------------------------------------------------------------


def test_walk_yields_top_level_stories_only_across_pages(fake_reddit: FakeReddit) -> None:
    records = walk(fake_reddit)
    assert [r.id for r in records] == STORY_IDS
    texts = "\n".join(r.data["text"] for r in records)
    for comment_id, marker in NOT_STORIES.items():
        assert marker not in texts, comment_id
    assert "[removed]" not in texts
    first = records[0]
    assert first.category == "WritingPrompts"
    assert first.data["title"] == first.data["prompt"]
    assert first.data["title"].startswith("[WP] The last lighthouse keeper")
    assert first.data["permalink"] == "https://www.reddit.com/r/WritingPrompts/comments/abc101/" + (
        "wp_the_last_lighthouse_keeper_on_earth_receives/lamp01/"
    )
    assert first.data["author"] == "a_writer"

    tops = [r for r in fake_reddit.api_requests() if r.path.endswith("/top")]
    assert [r.query.get("after") for r in tops] == [None, "t3_abc101", "t3_abc104"]
    assert all(r.query["t"] == "month" and r.query["limit"] == "100" for r in tops)
    threads = [r.path for r in fake_reddit.api_requests() if r.path.startswith("/comments/")]
    assert threads == ["/comments/abc101", "/comments/abc102", "/comments/abc103"]  # no stickied, NSFW
    thread_queries = [r.query for r in fake_reddit.api_requests() if r.path.startswith("/comments/")]
    assert all(q["sort"] == "top" and q["depth"] == "1" for q in thread_queries)
    assert all(r.query.get("raw_json") == "1" for r in fake_reddit.api_requests())
    # One token, sent with every API request; every request with Reddit's User-Agent.
    assert fake_reddit.tokens_issued == 1
    assert len({r.token for r in fake_reddit.api_requests()}) == 1 and fake_reddit.api_requests()[0].token
    assert {r.user_agent for r in fake_reddit.requests} == {AGENT}
    assert {r.status for r in fake_reddit.requests} == {200}


def test_text_arrives_unescaped(fake_reddit: FakeReddit) -> None:
    diner = next(r for r in walk(fake_reddit) if r.id == "amp08")
    assert diner.data["text"] == DINER
    assert "Salt & Pepper" in diner.data["text"] and "< 5 minutes" in diner.data["text"]


def test_a_rerun_reads_the_run_store_and_sends_nothing(fake_reddit: FakeReddit) -> None:
    cache: dict[str, str] = {}
    first = walk(fake_reddit, cache)
    sent = fake_reddit.request_count
    assert sent == 7 and len(cache) == 6  # a token, three pages, three threads
    assert walk(fake_reddit, cache) == first
    assert fake_reddit.request_count == sent


def test_max_posts_and_comments_per_post_limit_the_walk(fake_reddit: FakeReddit) -> None:
    assert [r.id for r in walk(fake_reddit, max_posts=1)] == ["lamp01", "tide02"]
    assert len(fake_reddit.api_requests()) == 2  # one listing page, one thread
    limited = walk(fake_reddit, comments_per_post=1)
    assert [r.id for r in limited] == ["lamp01", "clock04", "amp08"]


def test_stopping_early_stops_the_downloads(fake_reddit: FakeReddit) -> None:
    client = http_client(fake_reddit)
    stories = iter_stories(client, client.settings)
    assert [next(stories).id for _ in range(2)] == ["lamp01", "tide02"]
    assert fake_reddit.paths() == ["/r/WritingPrompts/top", "/comments/abc101"]


def test_period_subreddit_and_nsfw_settings_reach_reddit(fake_reddit: FakeReddit) -> None:
    records = walk(fake_reddit, period="week", skip_nsfw=False)
    assert "nsfw1" in [r.id for r in records]
    assert fake_reddit.api_requests()[0].query["t"] == "week"
    assert walk(fake_reddit, subreddit="AskHistorians") == []
    assert fake_reddit.requests[-1].path == "/r/AskHistorians/top"


def test_a_throttled_fake_is_retried_after_the_advertised_reset(fake_reddit: FakeReddit) -> None:
    fake_reddit.throttle(times=1, reset=4)
    clock = Clock()
    client = http_client(fake_reddit)
    client.sleep, client.clock = clock.sleep, clock
    assert [r.id for r in iter_stories(client, client.settings)] == STORY_IDS
    first, second = fake_reddit.api_requests()[:2]
    assert (first.status, second.status) == (429, 200) and first.path == second.path
    assert clock.sleeps[0] == pytest.approx(4.5)  # then only the pacing of a large budget
    assert all(pause < 0.1 for pause in clock.sleeps[1:])


def test_a_small_budget_is_paced_by_the_headers_without_a_429() -> None:
    posts = [FakePost(f"p{i}", f"[WP] Prompt {i}", [FakeComment(f"c{i}", "y" * 400)]) for i in range(5)]
    with FakeReddit(posts, page_size=10, quota=3, window=1.0) as server:
        records = walk(server, rate_window=1.0)
    assert [r.id for r in records] == [f"c{i}" for i in range(5)]
    api = server.api_requests()
    assert len(api) == 6 and {r.status for r in api} == {200}  # waited instead of being refused
    assert api[3].at - api[0].at >= 0.9  # the fourth request waited for the window to reset


def test_revoked_tokens_are_renewed_and_a_revoked_app_stops_at_once(fake_reddit: FakeReddit) -> None:
    client = http_client(fake_reddit)
    stories = iter_stories(client, client.settings)
    next(stories)
    fake_reddit.revoke_tokens()
    assert len([next(stories) for _ in range(3)]) == 3
    assert fake_reddit.tokens_issued == 2
    assert [r.status for r in fake_reddit.api_requests()][-3:] == [401, 200, 200]

    fake_reddit.revoke_client()
    before = fake_reddit.request_count
    with pytest.raises(RedditError, match="refused the app's credentials") as caught:
        list(stories)
    assert "fake-app-secret" not in str(caught.value)
    assert [r.status for r in fake_reddit.requests[before:]] == [401, 401]  # one 401, one refusal


def test_logged_out_requests_are_refused_with_403(fake_reddit: FakeReddit) -> None:
    request = urllib.request.Request(
        f"{fake_reddit.base_url}/r/WritingPrompts/top/.json", headers={"User-Agent": AGENT}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 403


def test_the_fake_refuses_agents_not_in_reddits_form(fake_reddit: FakeReddit) -> None:
    for agent in ("Python-urllib/3.11", "Mozilla/5.0 (X11; Linux x86_64)", "synthtune/0.1"):
        request = urllib.request.Request(
            f"{fake_reddit.base_url}/r/WritingPrompts/top",
            headers={"User-Agent": agent, "Authorization": "bearer x"},
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 429, agent


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
    with pytest.raises(ValueError):
        RedditSourceSettings(username="no spaces allowed")
