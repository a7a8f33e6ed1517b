"""The one-line explanations the ``reddit`` source gives when Reddit will not serve it.

Each says what changed at Reddit, what the user can do, and where the README explains it.
"""

from __future__ import annotations

README = 'see "The reddit source" in the README'
OFFLINE = (
    "or run offline with --preset writing-coach-dump (Reddit dumps) or writing-coach-hf "
    "(a Hugging Face dataset)"
)


def no_credentials(missing: list[str]) -> str:
    return (
        f"reddit: {' and '.join(missing)} not set. Reddit answers logged-out requests with 403 since "
        "May 2026 and its API needs an OAuth app (new apps need Reddit's approval since November 2025): "
        f"export REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET of an approved app, {OFFLINE}; {README}"
    )


def no_username() -> str:
    return (
        "reddit: Reddit requires a User-Agent naming your Reddit account, "
        "'<platform>:<app ID>:<version> (by /u/<username>)': export REDDIT_USERNAME or set "
        f"source.username (or the whole source.user_agent); {README}"
    )


def forbidden(url: str) -> str:
    return (
        f"reddit: GET {url} returned HTTP 403. Reddit refuses logged-out and unapproved API access "
        "since 2025-2026 (or the subreddit is private or quarantined): use the OAuth credentials of "
        f"an approved app, {OFFLINE}; {README}"
    )


def redirected(url: str, status: int, location: str) -> str:
    return (
        f"reddit: GET {url} was redirected (HTTP {status} to {location or 'somewhere'}), as Reddit does "
        f"with logged-out clients since June 2026: check source.base_url (the API is "
        f"https://oauth.reddit.com), {OFFLINE}; {README}"
    )


REFUSED_CREDENTIALS = (
    "reddit: {url} refused the app's credentials ({detail}): the client id or secret is wrong, the "
    "app was revoked or not approved, or the refresh token was revoked; check REDDIT_CLIENT_ID, "
    "REDDIT_CLIENT_SECRET and REDDIT_REFRESH_TOKEN at https://www.reddit.com/prefs/apps, "
    + OFFLINE
    + "; "
    + README
)


def token_revoked(url: str) -> str:
    return (
        f"reddit: GET {url} refused a freshly issued token (HTTP 401 twice): the app's access was "
        f"revoked; check the app at https://www.reddit.com/prefs/apps, {OFFLINE}; {README}"
    )
