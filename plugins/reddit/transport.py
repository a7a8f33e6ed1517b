"""One HTTP exchange with Reddit over urllib, and the error every Reddit failure becomes.

Synchronous on purpose: a source is pulled one record at a time and Reddit's budget is about
one request a second, so there is nothing for concurrency to win.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from synthtune.core.errors import SynthtuneError

MAX_BODY_BYTES = 32 * 1024 * 1024  # a thread's JSON is far smaller; this bounds a hostile reply


class RedditError(SynthtuneError):
    """Reddit refused or kept failing; the message says what to do."""


@dataclass
class HttpReply:
    status: int
    body: bytes
    headers: Message


# (method, url, headers, body, timeout) -> reply; HTTP error statuses are replies, not raised.
Fetch = Callable[[str, str, dict[str, str], bytes | None, float], HttpReply]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Reddit sends logged-out clients to a login page: a redirect is an answer to report,
    never one to follow with the bearer token."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def urllib_fetch(
    method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float
) -> HttpReply:
    """Send one request with urllib and return the answer, whatever its status."""
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            data = response.read(MAX_BODY_BYTES + 1)
            return HttpReply(response.status, data, response.headers)
    except urllib.error.HTTPError as error:
        data = error.read(64 * 1024) if error.fp is not None else b""
        return HttpReply(error.code, data, error.headers)
