"""Application-only OAuth for Reddit's API, and the User-Agent Reddit asks for.

The token request is Reddit's OAuth2 token retrieval as prawcore makes it (``prawcore/auth.py``,
``BaseAuthorizer._request_token`` and ``ReadOnlyAuthorizer.refresh``): a form POST to
``{auth_url}/api/v1/access_token`` with the app's id and secret as HTTP Basic credentials and
``grant_type=client_credentials`` (an app-only token, no user), or
``grant_type=refresh_token&refresh_token=...`` for a user-context app. The answer is
``{"access_token", "token_type": "bearer", "expires_in": 3600, "scope"}``; Reddit also answers
refusals with 200 and an ``"error"`` field (prawcore's recorded cassettes show both
``{"error": "invalid_grant"}`` with 200 and ``{"error": 400}`` with 400), and wrong app
credentials with 401. Requests then carry ``Authorization: bearer <token>``.

Secrets are read from the environment when a request needs them and kept only in memory: they
never appear in settings, messages, logs or the run store.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from synthtune.core.errors import ConfigError
from synthtune.plugins.reddit.messages import REFUSED_CREDENTIALS, no_credentials, no_username
from synthtune.plugins.reddit.settings import USER_AGENT, RedditSourceSettings
from synthtune.plugins.reddit.transport import HttpReply, RedditError

CLIENT_ID_ENV = "REDDIT_CLIENT_ID"
CLIENT_SECRET_ENV = "REDDIT_CLIENT_SECRET"
REFRESH_TOKEN_ENV = "REDDIT_REFRESH_TOKEN"
USERNAME_ENV = "REDDIT_USERNAME"
TOKEN_PATH = "/api/v1/access_token"
DEFAULT_LIFETIME = 3600.0

# (method, url, headers, form body) -> reply, with the client's pacing and retries.
Send = Callable[[str, str, dict[str, str], bytes | None], HttpReply]


@dataclass(frozen=True)
class Credentials:
    """An OAuth app's id and secret, and a refresh token for a user-context app."""

    client_id: str
    client_secret: str = ""
    refresh_token: str | None = None

    def __repr__(self) -> str:  # never print a secret by accident
        return f"Credentials(client_id={self.client_id!r}, ...)"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Credentials:
        """The credentials in the environment; a ConfigError that says what changed at Reddit
        and what to do when there are none."""
        env = os.environ if env is None else env
        client_id = env.get(CLIENT_ID_ENV, "").strip()
        secret = env.get(CLIENT_SECRET_ENV, "").strip()
        if not client_id or not secret:
            missing = [
                name for name, value in ((CLIENT_ID_ENV, client_id), (CLIENT_SECRET_ENV, secret)) if not value
            ]
            raise ConfigError(no_credentials(missing))
        refresh = env.get(REFRESH_TOKEN_ENV, "").strip() or None
        return cls(client_id, secret, refresh)


def user_agent(settings: RedditSourceSettings, env: Mapping[str, str] | None = None) -> str:
    """``<platform>:<app ID>:<version> (by /u/<username>)``, from the settings and
    ``$REDDIT_USERNAME`` (or ``source.user_agent`` as a whole)."""
    if settings.user_agent:
        return settings.user_agent
    env = os.environ if env is None else env
    username = settings.username or env.get(USERNAME_ENV, "").strip()
    if not username:
        raise ConfigError(no_username())
    agent = f"{settings.platform}:{settings.app_id}:{settings.app_version} (by /u/{username})"
    if not USER_AGENT.match(agent):
        raise ConfigError(f"reddit: {USERNAME_ENV}={username!r} is not a Reddit username")
    return agent


@dataclass
class TokenSource:
    """Fetches the bearer token when there is none or it is about to expire."""

    settings: RedditSourceSettings
    credentials: Credentials
    send: Send
    agent: str
    clock: Callable[[], float]
    token: str | None = None
    expires_at: float = 0.0
    fetched: int = 0

    def current(self) -> str:
        """A token that is valid for a while yet (fetched now if needed)."""
        if self.token is None or self.clock() >= self.expires_at:
            self._fetch()
        assert self.token is not None
        return self.token

    def invalidate(self) -> None:
        """Forget the token (Reddit answered 401): the next request fetches a new one."""
        self.token = None

    def _fetch(self) -> None:
        form: dict[str, str] = {"grant_type": "client_credentials"}
        if self.credentials.refresh_token:
            form = {"grant_type": "refresh_token", "refresh_token": self.credentials.refresh_token}
        pair = f"{self.credentials.client_id}:{self.credentials.client_secret}".encode()
        headers = {
            "User-Agent": self.agent,
            "Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        url = self.settings.auth_url + TOKEN_PATH
        started = self.clock()
        reply = self.send("POST", url, headers, urlencode(form).encode())
        self.fetched += 1
        payload = _json_object(reply.body)
        error = payload.get("error") if payload is not None else None
        token = payload.get("access_token") if payload is not None else None
        if reply.status != 200 or error is not None or not isinstance(token, str) or not token:
            detail = f"HTTP {reply.status}" + (f", error {error!r}" if error is not None else "")
            raise RedditError(REFUSED_CREDENTIALS.format(url=url, detail=detail))
        lifetime = payload.get("expires_in") if payload is not None else None
        seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else DEFAULT_LIFETIME
        # Renew a little early so a token never expires between the check and the request.
        self.token = token
        self.expires_at = started + seconds - min(60.0, seconds / 10)


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
