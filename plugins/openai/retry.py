"""When to retry a chat-completion request, and how long to wait first.

Retried: 408, 409, 429 and 5xx answers, timeouts, connection errors and malformed bodies, as long
as the run's retry budget (:class:`RetryBudget`) allows.
Fatal for the whole run: 401, 403 and 404 (every other request would fail the same way), and a
429 whose code says the account is out of quota (``insufficient_quota``: waiting will not help).
Failed at once, for that request only: any other 4xx (a 400 for one oversized prompt, say), and a
5xx whose message says the request itself is invalid (llama-cpp-python answers a body it cannot
validate with a 500): sending the same body again would get the same answer.

Waits use exponential backoff with full jitter (a uniform draw in ``[0, min(cap, base * 2**n)]``,
which spreads retries of requests that failed together), except when the server sent
``Retry-After``: then we wait what it asked, plus a little jitter, never less.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["ok", "retry", "fatal", "failed"]

RETRY_STATUSES = frozenset({408, 409, 429})
FATAL_STATUSES = frozenset({401, 403, 404})
# Error codes (or types) that no wait will change: the account has no credit or is disabled.
FATAL_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "account_deactivated"})
# A 5xx whose message says this: the server could not read or validate the request, so the
# same body would fail again. Servers that wrap every exception in a 500 (llama-cpp-python,
# some proxies) say so only in the message.
INVALID_REQUEST = re.compile(
    r"validation error|invalid[ _]request|input should be|extra inputs are not permitted"
    r"|field required|missing required|unrecognized request argument|unknown (?:field|parameter|argument)"
    r"|(?:is|are) not supported|unsupported (?:parameter|value|response_format)",
    re.IGNORECASE,
)


def classify_status(status: int, message: str | None = None, code: str | None = None) -> Kind:
    """What an HTTP answer means for the request: ``ok``, ``retry`` (it may work later),
    ``fatal`` (stop the run: no request can succeed) or ``failed`` (this request fails as it is:
    do not send it again). ``message`` and ``code`` are the error body's, when there is one."""
    if 200 <= status < 300:
        return "ok"
    if status in FATAL_STATUSES or (code is not None and code in FATAL_CODES):
        return "fatal"
    if status in RETRY_STATUSES:
        return "retry"
    if status >= 500:
        if code == "invalid_request_error" or (message and INVALID_REQUEST.search(message)):
            return "failed"
        return "retry"
    return "failed"


class RetryBudget:
    """Retries for the whole run: ``floor`` to begin with, plus ``ratio`` per successful answer.

    Per-request limits alone let a server that fails everything cost every request its full
    ``max_retries`` (with growing waits) before the run can tell; with a budget, once the
    server has failed ``floor`` retries more than its successes pay for, further failures settle
    at once, so the run sees them and can stop. Rate-limit answers (429) do not spend it: their
    waits are bounded by :class:`~synthtune.plugins.openai.ratewatch.RateLimitWatch`.
    """

    def __init__(self, floor: int, ratio: float) -> None:
        self.available = float(floor)
        self.ratio = ratio
        self.spent = 0

    def on_success(self) -> None:
        self.available += self.ratio

    def spend(self) -> bool:
        """Take one retry; False when the budget is empty (the request should fail now)."""
        if self.available < 1:
            return False
        self.available -= 1
        self.spent += 1
        return True


@dataclass
class Backoff:
    """Exponential backoff with full jitter, honouring Retry-After."""

    base: float = 0.5
    cap: float = 30.0
    retry_after_jitter: float = 0.1  # fraction of Retry-After added at most, to spread a herd
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        if retry_after is not None and retry_after > 0:
            return retry_after + self.rng.uniform(0, min(1.0, retry_after * self.retry_after_jitter))
        return self.rng.uniform(0, min(self.cap, self.base * 2.0 ** min(retry, 30)))
